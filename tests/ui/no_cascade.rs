//! A broken model used by the rest of the program, directly and through the `Model` trait
//! (`fit`, `evaluate`): only the model's own error is reported, because the stand-in items
//! keep `Xor::new`, `workspace` and `train_step` type-checking and implement `Model`.

nnc::model! {
    model Xor {
        input  x: [2];
        target y: [1];
        let p = x -> dense hidden(8) -> tanh -> dense out(1) -> sigmod;
        loss = binary_cross_entropy(p, y);
        optimizer = sgd(lr = 0.5);
    }
}

fn main() -> Result<(), nnc::train::Error> {
    let mut model = Xor::new(7);
    let mut ws = model.workspace(4);
    let loss: f32 = model.train_step(&mut ws, &[0.0; 8], &[0.0; 4]).unwrap();
    println!("{loss} {:?}", model.predict(&mut ws, &[0.0; 2]).unwrap());

    use nnc::train::Column;
    let data = nnc::train::Dataset::new(
        vec![Column::float(vec![0.0f32; 8], &[2])],
        vec![Column::float(vec![0.0f32; 4], &[1])],
    )?;
    nnc::train::fit(&mut model, &data, &nnc::train::FitOptions::default())?;
    let metrics = nnc::train::evaluate(&model, &data, 4)?;
    println!("{}", metrics.loss);
    Ok(())
}
