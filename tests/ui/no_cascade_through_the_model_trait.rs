//! A broken model used through the `Model` trait (`fit`, `evaluate`): the stand-in implements
//! it, so the model's own error is the only one.

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
    use nnc::train::Column;
    let data = nnc::train::Dataset::new(
        vec![Column::float(vec![0.0f32; 8], &[2])],
        vec![Column::float(vec![0.0f32; 4], &[1])],
    )?;
    let mut model = Xor::new(7);
    nnc::train::fit(&mut model, &data, &nnc::train::FitOptions::default())?;
    let metrics = nnc::train::evaluate(&model, &data, 4)?;
    println!("{}", metrics.loss);
    Ok(())
}
