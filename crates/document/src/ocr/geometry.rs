//! Rotated rectangles (detected text boxes and rows) and quarter turns of the page.

use image::RgbImage;

/// A rotated rectangle in page coordinates.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RotRect {
    pub cx: f32,
    pub cy: f32,
    /// Extent along the text direction.
    pub len: f32,
    /// Extent across the text direction.
    pub h: f32,
    /// Text direction, radians, in (-pi/2, pi/2].
    pub angle: f32,
}

impl RotRect {
    pub(super) fn dir(&self) -> (f32, f32) {
        (self.angle.cos(), self.angle.sin())
    }
    pub(super) fn corners(&self) -> [(f32, f32); 4] {
        let (ux, uy) = self.dir();
        let (vx, vy) = (-uy, ux);
        let (a, b) = (self.len / 2.0, self.h / 2.0);
        [
            (self.cx - ux * a - vx * b, self.cy - uy * a - vy * b),
            (self.cx + ux * a - vx * b, self.cy + uy * a - vy * b),
            (self.cx + ux * a + vx * b, self.cy + uy * a + vy * b),
            (self.cx - ux * a + vx * b, self.cy - uy * a + vy * b),
        ]
    }
}

/// Long thin rows: the only ones that can be MRZ lines.
pub(super) fn is_long_row(r: &RotRect) -> bool {
    r.len >= 8.0 * r.h && r.h >= 4.0
}

/// `image` turned clockwise by `quarter` quarter turns (made once, on first use).
pub(super) fn turned_page<'a>(
    image: &'a RgbImage,
    pages: &'a mut [Option<RgbImage>; 4],
    quarter: usize,
) -> &'a RgbImage {
    if quarter == 0 {
        return image;
    }
    pages[quarter].get_or_insert_with(|| match quarter {
        1 => image::imageops::rotate90(image),
        2 => image::imageops::rotate180(image),
        _ => image::imageops::rotate270(image),
    })
}

/// A rectangle of a `w` x `h` page, on the page turned clockwise by `turns` quarter turns.
pub(super) fn turn_rect(r: &RotRect, turns: usize, w: u32, h: u32) -> RotRect {
    let (mut r, mut w, mut h) = (*r, w as f32, h as f32);
    for _ in 0..turns % 4 {
        // Pixel (x, y) goes to (h - 1 - y, x): in continuous coordinates (h - y, x).
        r = RotRect {
            cx: h - r.cy,
            cy: r.cx,
            angle: normalize_angle(r.angle + std::f32::consts::FRAC_PI_2),
            ..r
        };
        std::mem::swap(&mut w, &mut h);
    }
    r
}

/// Two detections of the same row (e.g. from the lower-part and the whole-page detector passes)
/// give the same crop to within a fraction of a pixel row.
pub(super) fn same_row(a: &RotRect, b: &RotRect) -> bool {
    let tol = 0.1 * a.h.min(b.h);
    (a.cx - b.cx).abs() <= tol
        && (a.cy - b.cy).abs() <= tol
        && (a.len - b.len).abs() <= 0.02 * a.len.max(b.len)
        && (a.h - b.h).abs() <= 0.05 * a.h.max(b.h)
        && angle_diff(a.angle, b.angle) <= 0.005
}

pub(super) fn normalize_angle(mut a: f32) -> f32 {
    use std::f32::consts::PI;
    while a > PI / 2.0 {
        a -= PI;
    }
    while a <= -PI / 2.0 {
        a += PI;
    }
    a
}

pub(super) fn angle_diff(a: f32, b: f32) -> f32 {
    normalize_angle(a - b).abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turned_rects_follow_the_turned_page() {
        // One marked pixel; its centre, turned with the page, lands on the marked pixel's centre.
        let (w, h) = (5u32, 3u32);
        let mut page = RgbImage::new(w, h);
        page.put_pixel(1, 0, image::Rgb([255, 0, 0]));
        let pages = [
            page.clone(),
            image::imageops::rotate90(&page),
            image::imageops::rotate180(&page),
            image::imageops::rotate270(&page),
        ];
        let rect = RotRect { cx: 1.5, cy: 0.5, len: 2.0, h: 1.0, angle: 0.0 };
        for (turns, turned) in pages.iter().enumerate() {
            let r = turn_rect(&rect, turns, w, h);
            let (x, y) = (r.cx.floor() as u32, r.cy.floor() as u32);
            assert_eq!(turned.get_pixel(x, y).0, [255, 0, 0], "turns {turns}");
            // Text direction turns with the page (a horizontal row becomes vertical and back).
            let vertical = turns % 2 == 1;
            assert_eq!(r.angle.abs() > 1.5, vertical, "turns {turns} angle {}", r.angle);
        }
        let back = turn_rect(&turn_rect(&rect, 1, w, h), 3, h, w);
        assert!((back.cx - rect.cx).abs() < 1e-4 && (back.cy - rect.cy).abs() < 1e-4);
    }

    #[test]
    fn same_row_tolerates_only_tiny_differences() {
        let a = RotRect { cx: 300.0, cy: 400.0, len: 600.0, h: 20.0, angle: 0.01 };
        assert!(same_row(&a, &RotRect { cx: 301.0, cy: 400.5, len: 604.0, ..a }));
        // The second-read crops (taller, longer) and the neighbour lines are different rows.
        assert!(!same_row(&a, &RotRect { h: 24.0, ..a }));
        assert!(!same_row(&a, &RotRect { h: 18.0, len: 618.0, ..a }));
        assert!(!same_row(&a, &RotRect { cy: 422.0, ..a }));
    }
}
