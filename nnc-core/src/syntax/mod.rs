//! The front end: source text to syntax tree, through the pest grammar in `grammar/nnc.pest`.

pub mod ast;
pub mod fmt;
mod parser;

pub use parser::parse;
