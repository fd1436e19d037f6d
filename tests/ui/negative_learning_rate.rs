//! A learning rate must be positive; `- 0.5` is two Rust tokens, both underlined.

nnc::model! {
    model Xor {
        input  x: [2];
        target y: [1];
        let p = x -> dense out(1) -> sigmoid;
        loss = binary_cross_entropy(p, y);
        optimizer = sgd(lr = -0.5);
    }
}

fn main() {}
