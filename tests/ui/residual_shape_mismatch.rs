// A skip connection between values of different widths: rustc underlines the `+` and both sides.
nnc::model! {
    model Residual {
        input x: [4];
        target y: class(3);
        let h = x -> dense stem(8, relu);
        let r = h -> dense block(3) + h;
        loss = cross_entropy(r, y, from_logits = true);
        optimizer = sgd(lr = 0.1, momentum = 0.9);
    }
}

fn main() {}
