//! Two compiled models trained together: a generative adversarial network on the 8×8 digits
//! of `data/digits.csv.gz`. The discriminator learns to tell real digits from generated ones;
//! the generator learns from the gradient of the discriminator's verdict with respect to its
//! input, which the discriminator computes because that input is declared `requires_grad`,
//! and which the generator takes in through `backward`.
//!
//! Every few epochs it writes a PNG grid of 100 generated digits (each pixel drawn 4 × 4) to
//! `target/gan/` (or the directory given as the first argument), so a person can look at them.
//!
//! Run with `cargo run --release --example gan [OUT_DIR]`.

use nnc::runtime::Rng;
use nnc::train::data::{csv, CsvOptions, Header};
use nnc::train::Column;
use std::error::Error;
use std::path::{Path, PathBuf};

nnc::include_model!("examples/gan.nnc");

const NOISE: usize = 16;
const PIXELS: usize = 64;
const BATCH: usize = 64;
const EPOCHS: usize = 200;

/// The real digits, scaled to [0, 1].
fn real_images() -> Result<Vec<f32>, Box<dyn Error>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz");
    let options = CsvOptions {
        header: Header::Absent,
        label_column: None,
        classes: Some(10),
    };
    let mut data = csv(path, &options)?;
    data.scale_inputs(1.0 / 16.0);
    match data.inputs.swap_remove(0) {
        Column::Float { values, .. } => Ok(values),
        Column::Ids { .. } => Err("the digits' pixels should be floats".into()),
    }
}

/// Writes `images` (each 8 × 8 in [0, 1]) as a 10 × 10 grid of 32 × 32 tiles separated by
/// grey lines, atomically (a temporary file renamed over the target).
fn write_grid(images: &[f32], path: &Path) -> Result<(), Box<dyn Error>> {
    const SCALE: usize = 4;
    const GAP: usize = 2;
    const TILE: usize = 8 * SCALE + GAP;
    const SIDE: usize = 10 * TILE + GAP;
    let mut pixels = vec![96u8; SIDE * SIDE];
    for (k, image) in images.chunks_exact(PIXELS).take(100).enumerate() {
        let (top, left) = (GAP + (k / 10) * TILE, GAP + (k % 10) * TILE);
        for (i, &v) in image.iter().enumerate() {
            let value = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            let (r, c) = (i / 8, i % 8);
            for dy in 0..SCALE {
                let start = (top + r * SCALE + dy) * SIDE + left + c * SCALE;
                pixels[start..start + SCALE].fill(value);
            }
        }
    }
    let tmp = path.with_extension("png.tmp");
    {
        let file = std::fs::File::create(&tmp)?;
        let mut encoder =
            png::Encoder::new(std::io::BufWriter::new(file), SIDE as u32, SIDE as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&pixels)?;
        writer.finish()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// What the training found: the discriminator's mean output on real and on generated images
/// in the last epoch, and the files written.
pub struct Report {
    pub real_score: f32,
    pub fake_score: f32,
    pub images: Vec<PathBuf>,
}

/// Trains for `epochs` epochs, writing a grid every `every` epochs into `out`.
pub fn run(epochs: usize, every: usize, out: &Path, quiet: bool) -> Result<Report, Box<dyn Error>> {
    let real = real_images()?;
    let samples = real.len() / PIXELS;
    std::fs::create_dir_all(out)?;
    let (mut generator, mut discriminator) = (Generator::new(1), Discriminator::new(2));
    let (mut g_ws, mut d_ws) = (generator.workspace(BATCH), discriminator.workspace(BATCH));
    let mut rng = Rng::new(3);
    let mut order: Vec<usize> = (0..samples).collect();
    let (ones, zeros) = (vec![1.0f32; BATCH], vec![0.0f32; BATCH]);
    let (mut batch, mut noise, mut fake) = (
        vec![0.0f32; BATCH * PIXELS],
        vec![0.0f32; BATCH * NOISE],
        vec![0.0f32; BATCH * PIXELS],
    );
    // A fixed noise batch, so that successive grids show the same latent points.
    let fixed: Vec<f32> = (0..100 * NOISE).map(|_| rng.normal(0.0, 1.0)).collect();
    let mut grid_ws = generator.workspace(100);
    let mut report = Report {
        real_score: 0.0,
        fake_score: 0.0,
        images: Vec::new(),
    };
    for epoch in 1..=epochs {
        rng.shuffle(&mut order);
        let (mut real_sum, mut fake_sum, mut count) = (0.0f32, 0.0f32, 0usize);
        for rows in order.chunks_exact(BATCH) {
            for (dst, &r) in batch.chunks_exact_mut(PIXELS).zip(rows) {
                dst.copy_from_slice(&real[r * PIXELS..(r + 1) * PIXELS]);
            }
            noise.iter_mut().for_each(|v| *v = rng.normal(0.0, 1.0));
            // The discriminator: real digits are 1, generated ones 0.
            fake.copy_from_slice(generator.forward_train(&mut g_ws, &noise)?);
            discriminator.train_step(&mut d_ws, &batch, &ones)?;
            real_sum += d_ws.metrics().loss;
            discriminator.train_step(&mut d_ws, &fake, &zeros)?;
            fake_sum += d_ws.metrics().loss;
            count += 1;
            // The generator: it wants its images called real. The discriminator's gradient
            // with respect to its input image is the gradient the generator's output gets.
            noise.iter_mut().for_each(|v| *v = rng.normal(0.0, 1.0));
            let images = generator.forward_train(&mut g_ws, &noise)?;
            discriminator.forward_backward(&mut d_ws, images, &ones)?;
            generator.backward(&mut g_ws, &noise, d_ws.grad_image())?;
            generator.update();
        }
        let (real_loss, fake_loss) = (real_sum / count as f32, fake_sum / count as f32);
        if epoch % every == 0 || epoch == epochs {
            let images = generator.predict(&mut grid_ws, &fixed)?;
            let path = out.join(format!("epoch_{epoch:03}.png"));
            write_grid(images, &path)?;
            // The discriminator's verdicts, in inference mode: mean output on real and fake.
            let on_real = discriminator
                .predict(&mut d_ws, &batch)?
                .iter()
                .sum::<f32>()
                / BATCH as f32;
            let images = generator.predict(&mut g_ws, &noise)?;
            fake.copy_from_slice(images);
            let on_fake =
                discriminator.predict(&mut d_ws, &fake)?.iter().sum::<f32>() / BATCH as f32;
            if !quiet {
                println!(
                    "epoch {epoch:3}  discriminator loss on real {real_loss:.3}, on generated {fake_loss:.3}; D(real) {on_real:.2}, D(generated) {on_fake:.2}  → {}",
                    path.display()
                );
            }
            report.real_score = on_real;
            report.fake_score = on_fake;
            report.images.push(path);
        }
    }
    Ok(report)
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn Error>> {
    let out = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/gan")));
    let report = run(EPOCHS, 25, &out, false)?;
    println!(
        "wrote {} image grids to {}; open the last one to see generated digits",
        report.images.len(),
        out.display()
    );
    Ok(())
}
