//! Text detection: the DB detector's probability map of a reduced page, turned into rotated
//! boxes in page coordinates.

use idverify_onnx::ort::value::Tensor;
use image::RgbImage;

use super::geometry::{RotRect, normalize_angle};
use super::{MrzReader, cpu_timed, planar};
use crate::DocumentError;

/// Small pages are upscaled so that MRZ characters stay detectable.
const DET_MIN_SIDE: u32 = 640;
const DB_THRESHOLD: f32 = 0.3;
const DB_BOX_THRESHOLD: f32 = 0.5;
const DB_UNCLIP_RATIO: f32 = 1.5;

impl MrzReader {
    /// DB text detection on the lower `fraction` of the page scaled to `max_side`; boxes in page
    /// coordinates.
    pub(super) fn detect(
        &self,
        page: &RgbImage,
        max_side: u32,
        fraction: f32,
    ) -> Result<Vec<RotRect>, DocumentError> {
        let (w, h) = page.dimensions();
        let (dw, dh_full) = det_dims(w, h, max_side);
        // Detector rows from `top` down, a multiple of 32 high as the detector needs.
        let top = dh_full - (((dh_full as f32 * fraction / 32.0).round() as u32).clamp(1, dh_full / 32) * 32);
        let dh = dh_full - top;
        // Only the page rows the detector will see are resized.
        let page_top = ((top as f32 * h as f32 / dh_full as f32).round() as u32).min(h - 1);
        let region = image::imageops::crop_imm(page, 0, page_top, w, h - page_top);
        let small = if w.max(h) > max_side {
            // Area averaging keeps thin strokes when shrinking a lot.
            let t = image::imageops::thumbnail(&*region, dw, dh);
            if t.dimensions() == (dw, dh) {
                t
            } else {
                image::imageops::resize(&t, dw, dh, image::imageops::FilterType::Triangle)
            }
        } else {
            image::imageops::resize(&*region, dw, dh, image::imageops::FilterType::Triangle)
        };
        let (sx, sy) = (w as f32 / dw as f32, (h - page_top) as f32 / dh as f32);
        let mean = [0.485f32, 0.456, 0.406];
        let std = [0.229f32, 0.224, 0.225];
        let input = planar(&small, |c, v| (v as f32 / 255.0 - mean[c]) / std[c], false)?;
        let (prob, cpu_us) = cpu_timed(|| {
            self.det.with(|s| -> Result<Vec<f32>, DocumentError> {
                let outputs = s.run(idverify_onnx::ort::inputs![Tensor::from_array(input)?])?;
                let (shape, data) = outputs[0].try_extract_tensor::<f32>()?;
                if shape.iter().product::<i64>() != (dw * dh) as i64 {
                    return Err(DocumentError::Inference(format!(
                        "unexpected detector output shape {shape:?}"
                    )));
                }
                Ok(data.to_vec())
            })
        });
        let prob = prob?;
        self.runs.count_detector(u64::from(dw * dh), cpu_us);
        let boxes = db_boxes(&prob, dw as usize, dh as usize);
        Ok(boxes
            .into_iter()
            .map(|b| {
                // Back to page coordinates (the two axes may scale slightly differently).
                let (ux, uy) = b.dir();
                let (lx, ly) = (ux * b.len * sx, uy * b.len * sy);
                let (hx, hy) = (-uy * b.h * sx, ux * b.h * sy);
                RotRect {
                    cx: b.cx * sx,
                    cy: page_top as f32 + b.cy * sy,
                    len: (lx * lx + ly * ly).sqrt(),
                    h: (hx * hx + hy * hy).sqrt(),
                    angle: ly.atan2(lx),
                }
            })
            .collect())
    }
}

/// Detector input size for a `w` x `h` page and a longest side of `max_side`: pages larger than
/// that are scaled down, small ones up to `DET_MIN_SIDE`; sides are multiples of 32.
pub(super) fn det_dims(w: u32, h: u32, max_side: u32) -> (u32, u32) {
    let longest = w.max(h) as f32;
    let scale = if longest > max_side as f32 {
        max_side as f32 / longest
    } else if longest < DET_MIN_SIDE as f32 {
        DET_MIN_SIDE as f32 / longest
    } else {
        1.0
    };
    let round32 = |v: f32| (((v / 32.0).round() as u32).max(1)) * 32;
    (round32(w as f32 * scale), round32(h as f32 * scale))
}

/// Connected components of the thresholded probability map, as rotated rectangles (map coordinates).
fn db_boxes(prob: &[f32], w: usize, h: usize) -> Vec<RotRect> {
    let mut label = vec![false; w * h];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    let mut pixels: Vec<(usize, usize)> = Vec::new();
    for start in 0..w * h {
        if label[start] || prob[start] <= DB_THRESHOLD {
            continue;
        }
        label[start] = true;
        stack.push(start);
        pixels.clear();
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            pixels.push((x, y));
            let mut visit = |j: usize| {
                if !label[j] && prob[j] > DB_THRESHOLD {
                    label[j] = true;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < w {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - w);
            }
            if y + 1 < h {
                visit(i + w);
            }
        }
        if pixels.len() < 10 {
            continue;
        }
        let score: f32 = pixels.iter().map(|&(x, y)| prob[y * w + x]).sum::<f32>() / pixels.len() as f32;
        if score < DB_BOX_THRESHOLD {
            continue;
        }
        if let Some(r) = min_rect(&pixels) {
            // DB shrinks text regions: grow back by area * ratio / perimeter on every side.
            let d = r.len * r.h * DB_UNCLIP_RATIO / (2.0 * (r.len + r.h));
            out.push(RotRect { len: r.len + 2.0 * d, h: r.h + 2.0 * d, ..r });
        }
    }
    out
}

/// Oriented bounding rectangle from the principal axis of the pixels.
fn min_rect(pixels: &[(usize, usize)]) -> Option<RotRect> {
    let n = pixels.len() as f32;
    if n < 2.0 {
        return None;
    }
    let (mx, my) = pixels.iter().fold((0.0f32, 0.0f32), |(a, b), &(x, y)| (a + x as f32, b + y as f32));
    let (mx, my) = (mx / n, my / n);
    let (mut sxx, mut syy, mut sxy) = (0.0f32, 0.0f32, 0.0f32);
    for &(x, y) in pixels {
        let (dx, dy) = (x as f32 - mx, y as f32 - my);
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    let angle = normalize_angle(0.5 * (2.0 * sxy).atan2(sxx - syy));
    let (ux, uy) = (angle.cos(), angle.sin());
    let (mut umin, mut umax, mut vmin, mut vmax) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    for &(x, y) in pixels {
        let (dx, dy) = (x as f32 - mx, y as f32 - my);
        let u = dx * ux + dy * uy;
        let v = -dx * uy + dy * ux;
        umin = umin.min(u - 0.5);
        umax = umax.max(u + 0.5);
        vmin = vmin.min(v - 0.5);
        vmax = vmax.max(v + 0.5);
    }
    let (uc, vc) = ((umin + umax) / 2.0, (vmin + vmax) / 2.0);
    let mut rect = RotRect {
        cx: mx + uc * ux - vc * uy,
        cy: my + uc * uy + vc * ux,
        len: umax - umin,
        h: vmax - vmin,
        angle,
    };
    if rect.h > rect.len {
        // Text runs along the longer side.
        std::mem::swap(&mut rect.len, &mut rect.h);
        rect.angle = normalize_angle(rect.angle + std::f32::consts::FRAC_PI_2);
    }
    Some(rect)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detector_sizes_are_multiples_of_32() {
        assert_eq!(det_dims(1600, 1200, 640), (640, 480));
        assert_eq!(det_dims(1600, 1200, 960), (960, 736));
        // Small pages are upscaled to the minimum side.
        assert_eq!(det_dims(400, 290, 640), (640, 480));
        assert_eq!(det_dims(400, 290, 960), (640, 480));
    }

    #[test]
    fn db_boxes_find_a_tilted_bar() {
        let (w, h) = (200usize, 100usize);
        let mut prob = vec![0.0f32; w * h];
        // A 120 x 8 bar tilted by ~0.1 rad.
        for i in 0..120 {
            for j in 0..8 {
                let x = 40.0 + i as f32 * 0.995 - j as f32 * 0.0998;
                let y = 40.0 + i as f32 * 0.0998 + j as f32 * 0.995;
                prob[y.round() as usize * w + x.round() as usize] = 0.9;
            }
        }
        let boxes = db_boxes(&prob, w, h);
        assert_eq!(boxes.len(), 1);
        let b = boxes[0];
        assert!((b.angle - 0.1).abs() < 0.03, "angle {}", b.angle);
        assert!(b.len > 120.0 && b.len < 140.0, "len {}", b.len);
    }
}
