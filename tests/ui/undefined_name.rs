//! `h` is used but never defined.

nnc::model! {
    model Xor {
        input  x: [2];
        target y: [1];
        let p = h -> dense out(1) -> sigmoid;
        loss = binary_cross_entropy(p, y);
        optimizer = sgd(lr = 0.5);
    }
}

fn main() {}
