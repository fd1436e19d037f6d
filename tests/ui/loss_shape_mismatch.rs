//! The prediction has 3 values per sample but the target has 1.

nnc::model! {
    model Mismatch {
        input  x: [2];
        target y: [1];
        let p = x -> dense hidden(8) -> tanh -> dense out(3) -> sigmoid;
        loss = binary_cross_entropy(p, y);
        optimizer = sgd(lr = 0.5);
    }
}

fn main() {}
