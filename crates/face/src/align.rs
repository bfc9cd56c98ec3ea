//! Face alignment: 4-dof similarity transform (least squares) onto dlib's 150 px chip template,
//! then a bilinear warp.

use image::{Rgb, RgbImage};

pub const CHIP_SIZE: u32 = 150;

/// Where dlib's own chip (5-point shape predictor, `get_face_chip`, 150 px, padding 0.25) puts
/// YuNet's landmarks, in YuNet's order: image-left eye, image-right eye, nose tip, image-left and
/// image-right mouth corners. Fitted as the mean over 296 LFW dev faces of YuNet's points mapped
/// through dlib's chip transforms (scripts/peer/make_dlib_reference.py + `face_eval
/// fit-template`), then made left-right symmetric.
pub const TEMPLATE: [[f32; 2]; 5] =
    [[47.16, 44.59], [100.96, 44.59], [74.06, 76.87], [50.98, 102.69], [97.14, 102.69]];

/// dst = [a -b; b a] · src + [tx, ty]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Similarity {
    pub a: f64,
    pub b: f64,
    pub tx: f64,
    pub ty: f64,
}

impl Similarity {
    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        [self.a * p[0] - self.b * p[1] + self.tx, self.b * p[0] + self.a * p[1] + self.ty]
    }

    /// Uniform scale factor (dst units per src unit).
    pub fn scale(&self) -> f64 {
        (self.a * self.a + self.b * self.b).sqrt()
    }

    /// Rotation angle in radians.
    pub fn angle(&self) -> f64 {
        self.b.atan2(self.a)
    }

    pub fn inverse(&self) -> Option<Similarity> {
        let det = self.a * self.a + self.b * self.b;
        if !(det.is_finite() && det > 1e-12) {
            return None;
        }
        let (a, b) = (self.a / det, -self.b / det);
        // src = R⁻¹ (dst - t)
        let tx = -(a * self.tx - b * self.ty);
        let ty = -(b * self.tx + a * self.ty);
        Some(Similarity { a, b, tx, ty })
    }
}

/// Least-squares similarity (no reflection) mapping `src` points onto `dst`.
/// Returns None for degenerate input (all source points equal, non-finite values).
pub fn estimate_similarity(src: &[[f64; 2]], dst: &[[f64; 2]]) -> Option<Similarity> {
    let n = src.len();
    if n < 2 || n != dst.len() {
        return None;
    }
    let mean = |pts: &[[f64; 2]]| {
        let (sx, sy) = pts.iter().fold((0.0, 0.0), |acc, p| (acc.0 + p[0], acc.1 + p[1]));
        [sx / n as f64, sy / n as f64]
    };
    let ms = mean(src);
    let md = mean(dst);
    let (mut num_a, mut num_b, mut den) = (0.0, 0.0, 0.0);
    for (s, d) in src.iter().zip(dst) {
        let (sx, sy) = (s[0] - ms[0], s[1] - ms[1]);
        let (dx, dy) = (d[0] - md[0], d[1] - md[1]);
        num_a += sx * dx + sy * dy;
        num_b += sx * dy - sy * dx;
        den += sx * sx + sy * sy;
    }
    if !(den.is_finite() && den > 1e-12) {
        return None;
    }
    let a = num_a / den;
    let b = num_b / den;
    let tx = md[0] - (a * ms[0] - b * ms[1]);
    let ty = md[1] - (b * ms[0] + a * ms[1]);
    [a, b, tx, ty].iter().all(|v| v.is_finite()).then_some(Similarity { a, b, tx, ty })
}

/// Bilinear sample at (x, y) in pixel coordinates; outside the image counts as black.
fn sample(image: &RgbImage, x: f64, y: f64) -> [f32; 3] {
    let (w, h) = (image.width() as i64, image.height() as i64);
    let x0 = x.floor();
    let y0 = y.floor();
    let fx = (x - x0) as f32;
    let fy = (y - y0) as f32;
    let (x0, y0) = (x0 as i64, y0 as i64);
    let px = |xi: i64, yi: i64| -> [f32; 3] {
        if xi < 0 || yi < 0 || xi >= w || yi >= h {
            [0.0; 3]
        } else {
            let p = image.get_pixel(xi as u32, yi as u32);
            [p[0] as f32, p[1] as f32, p[2] as f32]
        }
    };
    let (p00, p10, p01, p11) = (px(x0, y0), px(x0 + 1, y0), px(x0, y0 + 1), px(x0 + 1, y0 + 1));
    let mut out = [0f32; 3];
    for c in 0..3 {
        let top = p00[c] + (p10[c] - p00[c]) * fx;
        let bottom = p01[c] + (p11[c] - p01[c]) * fx;
        out[c] = top + (bottom - top) * fy;
    }
    out
}

/// Warps `image` into a `size`×`size` chip: chip pixel (u, v) takes the source at `to_chip⁻¹(u, v)`.
/// Returns interleaved RGB floats 0..255 (row-major).
pub fn warp_bilinear(image: &RgbImage, to_chip: &Similarity, size: u32) -> Option<Vec<[f32; 3]>> {
    let inv = to_chip.inverse()?;
    let mut out = Vec::with_capacity((size * size) as usize);
    for v in 0..size {
        for u in 0..size {
            let [x, y] = inv.apply([u as f64, v as f64]);
            out.push(sample(image, x, y));
        }
    }
    Some(out)
}

/// Box-averages a region of `image` by an integer `factor` (anti-aliasing before a large shrink).
/// Returns the reduced image and its top-left corner in source pixels.
pub(crate) fn box_reduce(image: &RgbImage, x0: u32, y0: u32, x1: u32, y1: u32, factor: u32) -> RgbImage {
    let w = (x1 - x0) / factor;
    let h = (y1 - y0) / factor;
    let area = factor * factor;
    RgbImage::from_fn(w.max(1), h.max(1), |ox, oy| {
        let mut acc = [0u32; 3];
        for dy in 0..factor {
            for dx in 0..factor {
                let sx = (x0 + ox * factor + dx).min(image.width() - 1);
                let sy = (y0 + oy * factor + dy).min(image.height() - 1);
                let p = image.get_pixel(sx, sy);
                for c in 0..3 {
                    acc[c] += p[c] as u32;
                }
            }
        }
        Rgb([(acc[0] / area) as u8, (acc[1] / area) as u8, (acc[2] / area) as u8])
    })
}

/// Aligns a face given its 5 landmarks to dlib's 150 px chip. Large faces are first box-reduced
/// around the face so the bilinear warp does not alias (dlib uses an image pyramid for the same).
pub fn align_chip(image: &RgbImage, landmarks: &[[f32; 2]; 5]) -> Option<Vec<[f32; 3]>> {
    align_chip_to(image, landmarks, &TEMPLATE)
}

/// [`TEMPLATE`] scaled about the chip centre: above 1 the face fills more of the chip.
pub fn scaled_template(scale: f32) -> [[f32; 2]; 5] {
    let centre = CHIP_SIZE as f32 / 2.0;
    TEMPLATE.map(|p| [centre + (p[0] - centre) * scale, centre + (p[1] - centre) * scale])
}

/// [`align_chip`] onto another template (e.g. a [`scaled_template`]).
pub fn align_chip_to(
    image: &RgbImage,
    landmarks: &[[f32; 2]; 5],
    template: &[[f32; 2]; 5],
) -> Option<Vec<[f32; 3]>> {
    if image.width() == 0 || image.height() == 0 {
        return None;
    }
    let src: Vec<[f64; 2]> = landmarks.iter().map(|p| [p[0] as f64, p[1] as f64]).collect();
    let dst: Vec<[f64; 2]> = template.iter().map(|p| [p[0] as f64, p[1] as f64]).collect();
    let to_chip = estimate_similarity(&src, &dst)?;
    let factor = (1.0 / to_chip.scale()).floor();
    if (2.0..1e4).contains(&factor) {
        let factor = factor as u32;
        // The chip's footprint in the source image, with a margin.
        let inv = to_chip.inverse()?;
        let corners = [[0.0, 0.0], [150.0, 0.0], [0.0, 150.0], [150.0, 150.0]].map(|c| inv.apply(c));
        let clampx = |v: f64| v.clamp(0.0, image.width() as f64) as u32;
        let clampy = |v: f64| v.clamp(0.0, image.height() as f64) as u32;
        let margin = 2.0 * factor as f64;
        let x0 = clampx(corners.iter().map(|c| c[0]).fold(f64::INFINITY, f64::min) - margin);
        let y0 = clampy(corners.iter().map(|c| c[1]).fold(f64::INFINITY, f64::min) - margin);
        let x1 = clampx(corners.iter().map(|c| c[0]).fold(f64::NEG_INFINITY, f64::max) + margin);
        let y1 = clampy(corners.iter().map(|c| c[1]).fold(f64::NEG_INFINITY, f64::max) + margin);
        if x1 > x0 + factor && y1 > y0 + factor {
            let reduced = box_reduce(image, x0, y0, x1, y1, factor);
            // Reduced pixel (rx, ry) averages source pixels starting at x0 + rx·f, centred at
            // x0 + rx·f + (f-1)/2.
            let off = (factor as f64 - 1.0) / 2.0;
            let f = factor as f64;
            let src_r: Vec<[f64; 2]> =
                src.iter().map(|p| [(p[0] - x0 as f64 - off) / f, (p[1] - y0 as f64 - off) / f]).collect();
            let to_chip_r = estimate_similarity(&src_r, &dst)?;
            return warp_bilinear(&reduced, &to_chip_r, CHIP_SIZE);
        }
    }
    warp_bilinear(image, &to_chip, CHIP_SIZE)
}

#[cfg(test)]
mod tests {

    #[test]
    fn scaled_template_scales_about_the_chip_centre() {
        assert_eq!(scaled_template(1.0), TEMPLATE);
        let t = scaled_template(2.0);
        // 75 + (47.16 - 75) * 2 = 19.32; 75 + (44.59 - 75) * 2 = 14.18
        assert!((t[0][0] - 19.32).abs() < 1e-4 && (t[0][1] - 14.18).abs() < 1e-4, "{t:?}");
        // The nose tip (74.06, 76.87) stays near the centre.
        assert!((t[2][0] - 73.12).abs() < 1e-4 && (t[2][1] - 78.74).abs() < 1e-4, "{t:?}");
    }

    use super::*;

    #[test]
    fn recovers_known_transform() {
        let truth = Similarity { a: 0.8 * 0.3f64.cos(), b: 0.8 * 0.3f64.sin(), tx: 12.5, ty: -7.25 };
        let src = [[10.0, 20.0], [50.0, 22.0], [30.0, 40.0], [15.0, 60.0], [48.0, 61.0]];
        let dst: Vec<[f64; 2]> = src.iter().map(|p| truth.apply(*p)).collect();
        let est = estimate_similarity(&src, &dst).unwrap();
        assert!((est.a - truth.a).abs() < 1e-9);
        assert!((est.b - truth.b).abs() < 1e-9);
        assert!((est.tx - truth.tx).abs() < 1e-9);
        assert!((est.ty - truth.ty).abs() < 1e-9);
        assert!((est.scale() - 0.8).abs() < 1e-9);
        assert!((est.angle() - 0.3).abs() < 1e-9);
        let inv = est.inverse().unwrap();
        let back = inv.apply(dst[2]);
        assert!((back[0] - 30.0).abs() < 1e-9 && (back[1] - 40.0).abs() < 1e-9);
    }

    #[test]
    fn least_squares_with_noise_is_exact_for_symmetric_noise() {
        // Two points moved symmetrically along x: mean and scale stay 1 with this geometry.
        let src = [[0.0, 0.0], [10.0, 0.0]];
        let dst = [[5.0, 5.0], [25.0, 5.0]];
        let est = estimate_similarity(&src, &dst).unwrap();
        assert_eq!(est, Similarity { a: 2.0, b: 0.0, tx: 5.0, ty: 5.0 });
    }

    #[test]
    fn degenerate_points_rejected() {
        let src = [[1.0, 1.0]; 5];
        let dst = TEMPLATE.map(|p| [p[0] as f64, p[1] as f64]);
        assert!(estimate_similarity(&src, &dst).is_none());
        assert!(estimate_similarity(&[[f64::NAN, 0.0], [1.0, 1.0]], &[[0.0, 0.0], [1.0, 1.0]]).is_none());
    }

    #[test]
    fn bilinear_warp_exact_values() {
        // 2x2 image; sampling at a half-pixel shift gives exact averages.
        let mut img = RgbImage::new(2, 2);
        img.put_pixel(0, 0, Rgb([0, 0, 0]));
        img.put_pixel(1, 0, Rgb([100, 0, 0]));
        img.put_pixel(0, 1, Rgb([0, 200, 0]));
        img.put_pixel(1, 1, Rgb([100, 200, 40]));
        // chip = src - 0.5 (src = chip + 0.5): chip (0,0) samples source (0.5, 0.5).
        let t = Similarity { a: 1.0, b: 0.0, tx: -0.5, ty: -0.5 };
        let chip = warp_bilinear(&img, &t, 2).unwrap();
        assert_eq!(chip[0], [50.0, 100.0, 10.0]);
        // chip (1,0) samples (1.5, 0.5): the right half is outside (black).
        assert_eq!(chip[1], [50.0, 50.0, 10.0]);
        // Identity reproduces the pixels.
        let id = Similarity { a: 1.0, b: 0.0, tx: 0.0, ty: 0.0 };
        let same = warp_bilinear(&img, &id, 2).unwrap();
        assert_eq!(same, vec![[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [0.0, 200.0, 0.0], [100.0, 200.0, 40.0]]);
        // Scale 2 (chip = 2·src): chip (1,1) samples (0.5, 0.5).
        let up = Similarity { a: 2.0, b: 0.0, tx: 0.0, ty: 0.0 };
        let chip = warp_bilinear(&img, &up, 3).unwrap();
        assert_eq!(chip[4], [50.0, 100.0, 10.0]);
    }

    #[test]
    fn template_landmarks_align_to_identity() {
        let img = RgbImage::from_fn(150, 150, |x, y| Rgb([x as u8, y as u8, 7]));
        let chip = align_chip(&img, &TEMPLATE).unwrap();
        assert_eq!(chip.len(), 150 * 150);
        let p = chip[40 * 150 + 30];
        assert!((p[0] - 30.0).abs() < 1e-3 && (p[1] - 40.0).abs() < 1e-3 && p[2] == 7.0);
    }

    proptest::proptest! {
        #[test]
        fn align_never_panics(pts in proptest::collection::vec(-1e6f32..1e6f32, 10), w in 0u32..40, h in 0u32..40) {
            let img = RgbImage::new(w, h);
            let lm = [[pts[0], pts[1]], [pts[2], pts[3]], [pts[4], pts[5]], [pts[6], pts[7]], [pts[8], pts[9]]];
            if let Some(chip) = align_chip(&img, &lm) {
                proptest::prop_assert_eq!(chip.len(), 150 * 150);
            }
        }
    }

    #[test]
    fn large_face_is_reduced_before_warp() {
        // Template scaled by 4: chip should still map (30,40) to the source (120,160) colour.
        let img = RgbImage::from_fn(600, 600, |x, y| Rgb([(x / 4) as u8, (y / 4) as u8, 9]));
        let lm = TEMPLATE.map(|p| [p[0] * 4.0, p[1] * 4.0]);
        let chip = align_chip(&img, &lm).unwrap();
        let p = chip[40 * 150 + 30];
        assert!((p[0] - 30.0).abs() <= 1.0 && (p[1] - 40.0).abs() <= 1.0 && p[2] == 9.0, "{p:?}");
    }
}
