//! Capture-quality measures on the aligned chip (so figures do not depend on image resolution).

use crate::FaceQuality;

pub const MIN_FACE_WIDTH_PX: f32 = 60.0;
/// Variance of the Laplacian of the 150 px gray chip's central region.
pub const MIN_SHARPNESS: f32 = 25.0;
pub const MIN_BRIGHTNESS: f32 = 50.0;
pub const MAX_BRIGHTNESS: f32 = 215.0;
pub const MAX_YAW_DEGREES: f32 = 30.0;
pub const MAX_ROLL_DEGREES: f32 = 25.0;

fn luma(p: &[f32; 3]) -> f32 {
    0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]
}

/// (sharpness, brightness) of the chip's central face region (rows/cols 30..120).
pub fn chip_measures(chip: &[[f32; 3]], size: usize) -> (f32, f32) {
    if chip.len() != size * size || size < 8 {
        return (0.0, 0.0);
    }
    let gray: Vec<f32> = chip.iter().map(luma).collect();
    let (lo, hi) = (size / 5, size - size / 5);
    let mut sum = 0.0f64;
    let mut count = 0usize;
    let mut lap = Vec::with_capacity((hi - lo) * (hi - lo));
    for y in lo..hi {
        for x in lo..hi {
            let c = gray[y * size + x];
            sum += c as f64;
            count += 1;
            let l = gray[(y - 1) * size + x]
                + gray[(y + 1) * size + x]
                + gray[y * size + x - 1]
                + gray[y * size + x + 1]
                - 4.0 * c;
            lap.push(l as f64);
        }
    }
    let brightness = (sum / count as f64) as f32;
    let mean = lap.iter().sum::<f64>() / lap.len() as f64;
    let var = lap.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / lap.len() as f64;
    (var as f32, brightness)
}

/// Rough pose from the 5 landmarks: roll = angle of the eye line; yaw from the nose's horizontal
/// offset from the eye/mouth midline relative to the eye distance (frontal ≈ 0; ±90° at the limit).
pub fn pose_degrees(landmarks: &[[f32; 2]; 5]) -> (f32, f32) {
    let [le, re, nose, lm, rm] = *landmarks;
    let dx = re[0] - le[0];
    let dy = re[1] - le[1];
    let roll = dy.atan2(dx);
    let eye_dist = (dx * dx + dy * dy).sqrt();
    if !(eye_dist > 1e-3) {
        return (0.0, roll.to_degrees());
    }
    // Rotate into the eye-line frame so roll does not leak into yaw.
    let (c, s) = (roll.cos(), roll.sin());
    let to_x = |p: [f32; 2]| (p[0] - le[0]) * c + (p[1] - le[1]) * s;
    let mid = (to_x(le) + to_x(re) + to_x(lm) + to_x(rm)) / 4.0;
    let offset = (to_x(nose) - mid) / eye_dist;
    // A frontal nose sits on the midline; its offset grows roughly with sin(yaw) · (nose depth ≈ 0.6 eye distance).
    let yaw = (offset / 0.6).clamp(-1.0, 1.0).asin();
    (yaw.to_degrees(), roll.to_degrees())
}

pub fn assess(face_width_px: f32, chip: Option<&[[f32; 3]]>, landmarks: &[[f32; 2]; 5]) -> FaceQuality {
    let (sharpness, brightness) =
        chip.map(|c| chip_measures(c, crate::align::CHIP_SIZE as usize)).unwrap_or((0.0, 0.0));
    let (yaw, roll) = pose_degrees(landmarks);
    let mut reasons = Vec::new();
    if !(face_width_px >= MIN_FACE_WIDTH_PX) {
        reasons.push("face_too_small");
    }
    if !(sharpness >= MIN_SHARPNESS) {
        reasons.push("blurry");
    }
    if !(brightness >= MIN_BRIGHTNESS) {
        reasons.push("too_dark");
    }
    if brightness > MAX_BRIGHTNESS {
        reasons.push("too_bright");
    }
    if !(yaw.abs() <= MAX_YAW_DEGREES) {
        reasons.push("pose_yaw");
    }
    if !(roll.abs() <= MAX_ROLL_DEGREES) {
        reasons.push("pose_roll");
    }
    FaceQuality { face_width_px, sharpness, brightness, yaw_degrees: yaw, roll_degrees: roll, reasons }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontal_template_has_zero_pose() {
        let (yaw, roll) = pose_degrees(&crate::align::TEMPLATE);
        assert!(yaw.abs() < 1.0 && roll.abs() < 1e-3, "{yaw} {roll}");
    }

    #[test]
    fn rotated_landmarks_give_roll() {
        let a = 20f32.to_radians();
        let rot = crate::align::TEMPLATE
            .map(|p| [p[0] * a.cos() - p[1] * a.sin(), p[0] * a.sin() + p[1] * a.cos()]);
        let (yaw, roll) = pose_degrees(&rot);
        assert!((roll - 20.0).abs() < 1e-3 && yaw.abs() < 1.0);
    }

    #[test]
    fn flat_chip_is_blurry_and_checkerboard_is_sharp() {
        let flat = vec![[128.0f32; 3]; 150 * 150];
        let (sharp, bright) = chip_measures(&flat, 150);
        assert_eq!(sharp, 0.0);
        assert!((bright - 128.0).abs() < 1e-3);
        let checker: Vec<[f32; 3]> = (0..150 * 150)
            .map(|i| if (i % 150 + i / 150) % 2 == 0 { [0.0; 3] } else { [255.0; 3] })
            .collect();
        assert!(chip_measures(&checker, 150).0 > 1000.0);
        let q = assess(40.0, Some(&flat), &crate::align::TEMPLATE);
        assert_eq!(q.reasons, vec!["face_too_small", "blurry"]);
    }
}
