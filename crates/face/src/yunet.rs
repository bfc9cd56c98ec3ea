//! YuNet 2023mar: letterbox preprocessing, output decoding and NMS.
//!
//! Input `input` [1,3,640,640], BGR float 0..255, letterboxed (longest side scaled to 640, padded
//! right/bottom with 0). Outputs `cls_{8,16,32}`, `obj_*`, `bbox_*`, `kps_*`, one anchor per cell.

use crate::{BoundingBox, Face};
use image::RgbImage;

pub const INPUT_SIZE: u32 = 640;
pub const STRIDES: [u32; 3] = [8, 16, 32];
pub const SCORE_THRESHOLD: f32 = 0.6;
pub const NMS_IOU: f32 = 0.3;

/// Raw output tensors of one stride, flattened row-major (cells × channels).
pub struct StrideOutput<'a> {
    pub stride: u32,
    pub cls: &'a [f32],
    pub obj: &'a [f32],
    pub bbox: &'a [f32],
    pub kps: &'a [f32],
}

/// The letterboxed network input plus the factor that maps network pixels back to image pixels.
pub struct Letterbox {
    pub tensor: Vec<f32>,
    /// image pixels per network pixel
    pub inv_scale: f32,
}

/// Resizes the longest side to 640 (area averaging when shrinking), pads right/bottom with 0, BGR planes.
pub fn letterbox(image: &RgbImage) -> Letterbox {
    let (w, h) = image.dimensions();
    let size = INPUT_SIZE as usize;
    let mut tensor = vec![0f32; 3 * size * size];
    if w == 0 || h == 0 {
        return Letterbox { tensor, inv_scale: 1.0 };
    }
    let scale = INPUT_SIZE as f32 / w.max(h) as f32;
    let nw = ((w as f32 * scale).round() as u32).clamp(1, INPUT_SIZE);
    let nh = ((h as f32 * scale).round() as u32).clamp(1, INPUT_SIZE);
    resize_into_bgr_planes(image, nw, nh, &mut tensor, size);
    // Map back with the per-axis factor actually applied (rounding of nw/nh).
    let inv_scale = ((w as f32 / nw as f32) + (h as f32 / nh as f32)) / 2.0;
    Letterbox { tensor, inv_scale }
}

/// Resizes into the BGR planes of a `size`×`size` tensor: box averaging when shrinking (no
/// aliasing on large photos), bilinear when enlarging. Works on the raw buffer for speed.
fn resize_into_bgr_planes(image: &RgbImage, nw: u32, nh: u32, tensor: &mut [f32], size: usize) {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let (nw, nh) = (nw as usize, nh as usize);
    let raw = image.as_raw();
    let plane = size * size;
    let rx = w as f32 / nw as f32;
    let ry = h as f32 / nh as f32;
    if rx >= 1.0 && ry >= 1.0 {
        let span = |o: usize, r: f32, n: usize| {
            let a = ((o as f32 * r) as usize).min(n - 1);
            let b = (((o + 1) as f32 * r) as usize).clamp(a + 1, n);
            (a, b)
        };
        let xs: Vec<(usize, usize)> = (0..nw).map(|ox| span(ox, rx, w)).collect();
        let mut row_acc = vec![[0f32; 3]; nw];
        for oy in 0..nh {
            let (y0, y1) = span(oy, ry, h);
            row_acc.iter_mut().for_each(|a| *a = [0.0; 3]);
            for y in y0..y1 {
                let row = &raw[y * w * 3..(y + 1) * w * 3];
                for (acc, &(x0, x1)) in row_acc.iter_mut().zip(&xs) {
                    for px in row[x0 * 3..x1 * 3].chunks_exact(3) {
                        acc[0] += px[0] as f32;
                        acc[1] += px[1] as f32;
                        acc[2] += px[2] as f32;
                    }
                }
            }
            for (ox, (acc, &(x0, x1))) in row_acc.iter().zip(&xs).enumerate() {
                let n = ((x1 - x0) * (y1 - y0)) as f32;
                let i = oy * size + ox;
                tensor[i] = acc[2] / n;
                tensor[plane + i] = acc[1] / n;
                tensor[2 * plane + i] = acc[0] / n;
            }
        }
    } else {
        for oy in 0..nh {
            let sy = ((oy as f32 + 0.5) * ry - 0.5).clamp(0.0, (h - 1) as f32);
            let y0 = sy as usize;
            let y1 = (y0 + 1).min(h - 1);
            let fy = sy - y0 as f32;
            for ox in 0..nw {
                let sx = ((ox as f32 + 0.5) * rx - 0.5).clamp(0.0, (w - 1) as f32);
                let x0 = sx as usize;
                let x1 = (x0 + 1).min(w - 1);
                let fx = sx - x0 as f32;
                let i = oy * size + ox;
                for c in 0..3 {
                    let p = |x: usize, y: usize| raw[(y * w + x) * 3 + c] as f32;
                    let top = p(x0, y0) + (p(x1, y0) - p(x0, y0)) * fx;
                    let bottom = p(x0, y1) + (p(x1, y1) - p(x0, y1)) * fx;
                    tensor[(2 - c) * plane + i] = top + (bottom - top) * fy;
                }
            }
        }
    }
}

/// Decodes all strides into faces in network coordinates scaled by `inv_scale`, then applies NMS.
/// Faces come back sorted by score (highest first).
pub fn decode(outputs: &[StrideOutput<'_>], input_size: u32, threshold: f32, inv_scale: f32) -> Vec<Face> {
    let mut faces = Vec::new();
    for out in outputs {
        let cols = (input_size / out.stride) as usize;
        let rows = cols;
        let cells = rows * cols;
        if out.cls.len() < cells
            || out.obj.len() < cells
            || out.bbox.len() < cells * 4
            || out.kps.len() < cells * 10
        {
            continue;
        }
        let s = out.stride as f32;
        for idx in 0..cells {
            let score = (out.cls[idx].clamp(0.0, 1.0) * out.obj[idx].clamp(0.0, 1.0)).sqrt();
            if score < threshold || score.is_nan() {
                continue;
            }
            let row = (idx / cols) as f32;
            let col = (idx % cols) as f32;
            let b = &out.bbox[idx * 4..idx * 4 + 4];
            let cx = (col + b[0]) * s;
            let cy = (row + b[1]) * s;
            let bw = b[2].exp() * s;
            let bh = b[3].exp() * s;
            let k = &out.kps[idx * 10..idx * 10 + 10];
            let mut landmarks = [[0f32; 2]; 5];
            for (i, lm) in landmarks.iter_mut().enumerate() {
                *lm = [(col + k[2 * i]) * s * inv_scale, (row + k[2 * i + 1]) * s * inv_scale];
            }
            faces.push(Face {
                bbox: BoundingBox {
                    x: (cx - bw / 2.0) * inv_scale,
                    y: (cy - bh / 2.0) * inv_scale,
                    width: bw * inv_scale,
                    height: bh * inv_scale,
                },
                landmarks,
                score,
            });
        }
    }
    nms(faces, NMS_IOU)
}

pub fn iou(a: &BoundingBox, b: &BoundingBox) -> f32 {
    let x1 = a.x.max(b.x);
    let y1 = a.y.max(b.y);
    let x2 = (a.x + a.width).min(b.x + b.width);
    let y2 = (a.y + a.height).min(b.y + b.height);
    let inter = (x2 - x1).max(0.0) * (y2 - y1).max(0.0);
    let union = a.width * a.height + b.width * b.height - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Greedy NMS: keeps the highest-scoring box and drops others overlapping it by more than `iou_threshold`.
pub fn nms(mut faces: Vec<Face>, iou_threshold: f32) -> Vec<Face> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Face> = Vec::with_capacity(faces.len());
    for face in faces {
        if kept.iter().all(|k| iou(&k.bbox, &face.bbox) <= iou_threshold) {
            kept.push(face);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, y: f32, w: f32, h: f32, score: f32) -> Face {
        Face { bbox: BoundingBox { x, y, width: w, height: h }, landmarks: [[0.0; 2]; 5], score }
    }

    #[test]
    fn iou_of_known_boxes() {
        let a = BoundingBox { x: 0.0, y: 0.0, width: 10.0, height: 10.0 };
        let b = BoundingBox { x: 5.0, y: 0.0, width: 10.0, height: 10.0 };
        assert!((iou(&a, &b) - 50.0 / 150.0).abs() < 1e-6);
        let c = BoundingBox { x: 20.0, y: 20.0, width: 5.0, height: 5.0 };
        assert_eq!(iou(&a, &c), 0.0);
    }

    #[test]
    fn nms_keeps_best_of_overlapping_and_all_disjoint() {
        let faces = vec![
            face(0.0, 0.0, 10.0, 10.0, 0.7),
            face(1.0, 0.0, 10.0, 10.0, 0.9), // IoU with first = 90/110 = 0.818 -> first dropped
            face(5.0, 0.0, 10.0, 10.0, 0.8), // IoU with second = 60/140 = 0.43 -> dropped
            face(7.0, 0.0, 10.0, 10.0, 0.65), // IoU with second = 40/160 = 0.25 -> kept
            face(100.0, 100.0, 10.0, 10.0, 0.61),
        ];
        let kept = nms(faces, 0.3);
        let scores: Vec<f32> = kept.iter().map(|f| f.score).collect();
        assert_eq!(scores, vec![0.9, 0.65, 0.61]);
    }

    #[test]
    fn decode_synthetic_tensor() {
        // Stride 32 on a 64 px input: 2x2 cells. One confident cell at row 1, col 0.
        let mut cls = vec![0.0f32; 4];
        let mut obj = vec![0.0f32; 4];
        let mut bbox = vec![0.0f32; 16];
        let mut kps = vec![0.0f32; 40];
        let idx = 2; // row 1, col 0
        cls[idx] = 0.81;
        obj[idx] = 1.0; // score = sqrt(0.81) = 0.9
        bbox[idx * 4..idx * 4 + 4].copy_from_slice(&[0.5, 0.25, 0.0, (2.0f32).ln()]);
        for i in 0..5 {
            kps[idx * 10 + 2 * i] = 0.1 * i as f32;
            kps[idx * 10 + 2 * i + 1] = 0.5;
        }
        // A second cell with cls high but obj low: score sqrt(0.9*0.3)=0.52 < 0.6, dropped.
        cls[0] = 0.9;
        obj[0] = 0.3;
        let out = StrideOutput { stride: 32, cls: &cls, obj: &obj, bbox: &bbox, kps: &kps };
        let faces = decode(&[out], 64, 0.6, 2.0);
        assert_eq!(faces.len(), 1);
        let f = &faces[0];
        assert!((f.score - 0.9).abs() < 1e-6);
        // cx = (0 + 0.5) * 32 = 16, cy = (1 + 0.25) * 32 = 40, w = 32, h = 64; then x2 scale.
        assert!((f.bbox.x - (16.0 - 16.0) * 2.0).abs() < 1e-4);
        assert!((f.bbox.y - (40.0 - 32.0) * 2.0).abs() < 1e-4);
        assert!((f.bbox.width - 64.0).abs() < 1e-4);
        assert!((f.bbox.height - 128.0).abs() < 1e-4);
        for i in 0..5 {
            assert!((f.landmarks[i][0] - 0.1 * i as f32 * 32.0 * 2.0).abs() < 1e-4);
            assert!((f.landmarks[i][1] - 1.5 * 32.0 * 2.0).abs() < 1e-4);
        }
    }

    #[test]
    fn letterbox_scales_longest_side_and_uses_bgr() {
        let mut img = RgbImage::new(320, 160);
        for p in img.pixels_mut() {
            *p = image::Rgb([10, 20, 30]);
        }
        let lb = letterbox(&img);
        assert!((lb.inv_scale - 0.5).abs() < 1e-6);
        let plane = 640 * 640;
        assert_eq!(lb.tensor[0], 30.0); // B
        assert_eq!(lb.tensor[plane], 20.0); // G
        assert_eq!(lb.tensor[2 * plane], 10.0); // R
        // Below the 320-row content: zero padding.
        assert_eq!(lb.tensor[330 * 640 + 5], 0.0);
    }

    #[test]
    fn letterbox_box_averages_when_shrinking() {
        // 1280x1280 -> 640: each output pixel averages a 2x2 block of alternating 0/200 columns.
        let img = RgbImage::from_fn(1280, 1280, |x, _| {
            if x % 2 == 0 { image::Rgb([0, 0, 0]) } else { image::Rgb([200, 100, 50]) }
        });
        let lb = letterbox(&img);
        assert!((lb.inv_scale - 2.0).abs() < 1e-6);
        let plane = 640 * 640;
        assert_eq!(lb.tensor[1234], 25.0);
        assert_eq!(lb.tensor[plane + 1234], 50.0);
        assert_eq!(lb.tensor[2 * plane + 1234], 100.0);
    }
}
