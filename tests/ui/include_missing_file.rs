//! `include_model!` of a file that does not exist: the error is at the path.

nnc::include_model!("models/does_not_exist.nnc");

fn main() {}
