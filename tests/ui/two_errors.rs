//! Every error is reported, not only the first: an unknown activation and an unknown optimizer.

nnc::model! {
    model Xor {
        input  x: [2];
        target y: [1];
        let p = x -> dense out(1) -> sigmod;
        loss = binary_cross_entropy(p, y);
        optimizer = sdg(lr = 0.5);
    }
}

fn main() {}
