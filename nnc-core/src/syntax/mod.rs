//! The front end: source text to syntax tree, through the pest grammar in `grammar/nnc.pest`.

pub mod ast;
mod parser;

pub use parser::parse;
