//! imdb-lora command-line front end.
fn main() {}
