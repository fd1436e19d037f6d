fn main() {
    let path = std::env::args().nth(1).unwrap();
    let src = std::fs::read_to_string(&path).unwrap();
    match nnc_core::analyze(&src) {
        Ok(c) => {
            for (s, t) in &c.stages { println!("// stage {}\n{}", s.as_str(), t); }
            println!("{}", nnc_core::compile(&src, &Default::default()).unwrap());
        }
        Err(d) => print!("{}", nnc_core::render(&d, &path, &src, false)),
    }
}
