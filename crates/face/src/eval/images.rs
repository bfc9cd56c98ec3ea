//! Reading a pairs file, finding and embedding each image's face (plain or document style), progress.

use super::*;

pub(crate) struct PairRow {
    pub(crate) img_a: String,
    pub(crate) img_b: String,
    pub(crate) same: bool,
    pub(crate) fold: Option<i64>,
}

pub(crate) fn read_pairs(pairs_csv: &Path) -> Result<Vec<PairRow>, FaceError> {
    let mut reader = csv::Reader::from_path(pairs_csv)
        .map_err(|e| FaceError::Io(format!("{}: {e}", pairs_csv.display())))?;
    let headers = reader.headers().map_err(|e| FaceError::Data(e.to_string()))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let (ia, ib, is) = match (col("img_a"), col("img_b"), col("same")) {
        (Some(a), Some(b), Some(s)) => (a, b, s),
        _ => return Err(FaceError::Data("pairs csv needs columns img_a,img_b,same".into())),
    };
    let ifold = col("fold");
    let mut rows = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| FaceError::Data(e.to_string()))?;
        let field = |i: usize| record.get(i).map(str::trim).unwrap_or("");
        let same = match field(is).to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" => true,
            "0" | "false" | "no" => false,
            other => return Err(FaceError::Data(format!("row {}: bad `same` value {other:?}", line + 2))),
        };
        let fold = ifold.and_then(|i| field(i).parse::<i64>().ok());
        rows.push(PairRow { img_a: field(ia).to_string(), img_b: field(ib).to_string(), same, fold });
    }
    Ok(rows)
}

/// Decodes an image file and applies its EXIF orientation.
pub fn load_oriented_rgb(path: &Path) -> Result<RgbImage, FaceError> {
    let err = |e: String| FaceError::Io(format!("{}: {e}", path.display()));
    let mut decoder = ImageReader::open(path)
        .map_err(|e| err(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| err(e.to_string()))?
        .into_decoder()
        .map_err(|e| err(e.to_string()))?;
    let orientation = decoder.orientation().map_err(|e| err(e.to_string()))?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| err(e.to_string()))?;
    img.apply_orientation(orientation);
    Ok(img.to_rgb8())
}

/// The evaluated face of a dataset image (see the module doc), or None.
pub fn dataset_face(engine: &FaceEngine, image: &RgbImage) -> Result<Option<Face>, FaceError> {
    let mut faces = engine.detect(image)?;
    if faces.is_empty() {
        let (w, h) = image.dimensions();
        let (px, py) = (w / 4, h / 4);
        let mut padded = RgbImage::new(w + 2 * px, h + 2 * py);
        image::imageops::replace(&mut padded, image, px as i64, py as i64);
        faces = engine
            .detect(&padded)?
            .into_iter()
            .map(|f| crate::shift_face(f, -(px as f32), -(py as f32)))
            .collect();
    }
    let Some(largest) = faces.first().map(|f| f.bbox.width * f.bbox.height) else {
        return Ok(None);
    };
    let (cx, cy) = (image.width() as f32 / 2.0, image.height() as f32 / 2.0);
    let centre_dist = |f: &Face| {
        let (fx, fy) = (f.bbox.x + f.bbox.width / 2.0, f.bbox.y + f.bbox.height / 2.0);
        (fx - cx).powi(2) + (fy - cy).powi(2)
    };
    Ok(faces
        .into_iter()
        .filter(|f| f.bbox.width * f.bbox.height >= 0.25 * largest)
        .min_by(|a, b| centre_dist(a).total_cmp(&centre_dist(b))))
}

/// Deterministic small hash for per-image choices (face width, layout).
pub(crate) fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

/// Renders `face` of `image` as the portrait of a synthetic ID card photographed at 1280×960,
/// with the face `face_width` px wide, JPEG-compressed at quality 70. Deterministic.
pub fn synthetic_document(
    image: &RgbImage,
    face: &Face,
    face_width: f32,
    seed: u64,
) -> Result<RgbImage, FaceError> {
    let scale = face_width / face.bbox.width.max(1.0);
    // Portrait frame around the face: 1.7 face widths wide, 2.2 tall (passport-photo framing).
    let (fw, fh) = (face.bbox.width * 1.7, face.bbox.width * 2.2);
    let (fcx, fcy) = (face.bbox.x + face.bbox.width / 2.0, face.bbox.y + face.bbox.height / 2.0);
    let (out_w, out_h) = ((fw * scale).round().max(8.0) as u32, (fh * scale).round().max(8.0) as u32);
    let inv = 1.0 / scale;
    let (x0, y0) = (fcx - fw / 2.0, fcy - fh / 2.0 - 0.1 * fh);
    // Resample the frame (bilinear on an area-reduced copy when shrinking a lot).
    let src = if inv >= 2.0 {
        let f = inv.floor() as u32;
        image::imageops::thumbnail(image, (image.width() / f).max(1), (image.height() / f).max(1))
    } else {
        image.clone()
    };
    let sx = src.width() as f32 / image.width() as f32;
    let sy = src.height() as f32 / image.height() as f32;
    let light = Rgb([236u8, 238, 242]);
    let portrait = RgbImage::from_fn(out_w, out_h, |u, v| {
        let x = (x0 + u as f32 * inv) * sx;
        let y = (y0 + v as f32 * inv) * sy;
        if x < 0.0 || y < 0.0 || x > (src.width() - 1) as f32 || y > (src.height() - 1) as f32 {
            return light;
        }
        let (xi, yi) = (x.floor() as u32, y.floor() as u32);
        let (x1, y1) = ((xi + 1).min(src.width() - 1), (yi + 1).min(src.height() - 1));
        let (fx, fy) = (x - xi as f32, y - yi as f32);
        let p = |a: u32, b: u32| src.get_pixel(a, b).0.map(|c| c as f32);
        let (p00, p10, p01, p11) = (p(xi, yi), p(x1, yi), p(xi, y1), p(x1, y1));
        let mut out = [0u8; 3];
        for c in 0..3 {
            let t = p00[c] + (p10[c] - p00[c]) * fx;
            let b = p01[c] + (p11[c] - p01[c]) * fx;
            out[c] = (t + (b - t) * fy).round().clamp(0.0, 255.0) as u8;
        }
        Rgb(out)
    });

    // Card sized so the portrait frame is about 30 % of its width (ID-1 layout), on a table.
    let card_w = ((out_w as f32 / 0.3) as u32).clamp(300, 1200);
    let card_h = (card_w as f32 / 1.586) as u32;
    let mut canvas = RgbImage::from_pixel(1280, 960, Rgb([120, 104, 90]));
    let mut rng = seed | 1;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (cx0, cy0) = (
        (40 + next() % (1280u64.saturating_sub(card_w as u64 + 80).max(1))) as i64,
        (40 + next() % (960u64.saturating_sub(card_h as u64 + 80).max(1))) as i64,
    );
    let card = RgbImage::from_fn(card_w, card_h, |x, y| {
        // Pastel background with a faint wave pattern, blue header band.
        if y < card_h / 8 {
            return Rgb([40, 80, 140]);
        }
        let wave = ((x as f32 * 0.05).sin() * (y as f32 * 0.07).cos() * 8.0) as i16;
        Rgb([(220 + wave) as u8, (228 + wave) as u8, (236 - wave) as u8])
    });
    image::imageops::replace(&mut canvas, &card, cx0, cy0);
    let (px, py) = (cx0 + (card_w / 20) as i64, cy0 + (card_h / 5) as i64);
    image::imageops::replace(&mut canvas, &portrait, px, py);
    // Text lines to the right of the portrait.
    let text_x = px + out_w as i64 + (card_w / 20) as i64;
    for line in 0..6 {
        let ly = cy0 + (card_h / 5) as i64 + line * (card_h as i64 / 9);
        let len = (card_w as i64 / 3) + (next() % (card_w as u64 / 4 + 1)) as i64;
        for y in ly..ly + (card_h as i64 / 28).max(3) {
            for x in text_x..(text_x + len).min(cx0 + card_w as i64 - 10) {
                if (x / 7 + line) % 5 != 0 && x >= 0 && y >= 0 && (x as u32) < 1280 && (y as u32) < 960 {
                    canvas.put_pixel(x as u32, y as u32, Rgb([30, 30, 40]));
                }
            }
        }
    }
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 70)
        .encode_image(&canvas)
        .map_err(|e| FaceError::Data(format!("jpeg encode: {e}")))?;
    let decoded = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)
        .map_err(|e| FaceError::Data(format!("jpeg decode: {e}")))?;
    Ok(decoded.to_rgb8())
}

/// One image's embeddings (dlib; SFace when loaded).
pub(crate) struct ImageResult {
    pub(crate) dlib: Option<Embedding>,
    pub(crate) second: Option<Embedding>,
    /// detect + align + dlib embedding, wall milliseconds.
    pub(crate) ms: f64,
    /// SFace alignment + embedding, CPU milliseconds of this thread.
    pub(crate) second_cpu_ms: Option<f64>,
}

/// CPU time of the calling thread (Linux `/proc/thread-self/schedstat`), None elsewhere.
pub fn thread_cpu_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse::<f64>().ok().map(|ns| ns / 1e6)
}

pub(crate) fn embed_image(
    engine: &FaceEngine,
    path: &Path,
    document: bool,
    key: &str,
) -> Result<ImageResult, FaceError> {
    let image = load_oriented_rgb(path)?;
    let none = ImageResult { dlib: None, second: None, ms: 0.0, second_cpu_ms: None };
    let (image, face, ms) = if document {
        let Some(face) = dataset_face(engine, &image)? else { return Ok(none) };
        let width = 75.0 + (fnv(key) % 26) as f32;
        let doc = synthetic_document(&image, &face, width, fnv(key))?;
        let start = Instant::now();
        let found = engine.find_portrait(&doc)?;
        (doc, found, start)
    } else {
        let start = Instant::now();
        let face = dataset_face(engine, &image)?;
        (image, face, start)
    };
    let Some(face) = face else { return Ok(none) };
    let dlib = engine.embed(&image, &face)?;
    let ms = ms.elapsed().as_secs_f64() * 1000.0;
    let (second, second_cpu_ms) = if engine.has_second() {
        let cpu = thread_cpu_ms();
        let e = engine.embed_second(&image, &face)?;
        (Some(e), cpu.zip(thread_cpu_ms()).map(|(a, b)| b - a))
    } else {
        (None, None)
    };
    Ok(ImageResult { dlib: Some(dlib), second, ms, second_cpu_ms })
}

/// Embeds every image of the pairs file once (two worker threads) and scores each pair.
pub fn score_pairs(
    engine: &FaceEngine,
    pairs_csv: &Path,
    document_style: bool,
    out: &mut dyn Write,
) -> Result<ScoredPairs, FaceError> {
    score_pairs_cached(engine, pairs_csv, document_style, None, out)
}

/// [`score_pairs`], taking the embeddings found in `cache` and writing them all back to it.
pub fn score_pairs_cached(
    engine: &FaceEngine,
    pairs_csv: &Path,
    document_style: bool,
    cache: Option<&Path>,
    out: &mut dyn Write,
) -> Result<ScoredPairs, FaceError> {
    let rows = read_pairs(pairs_csv)?;
    let base = pairs_csv.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    // (key, relative path, document render?)
    let mut jobs: Vec<(String, String, bool)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for row in &rows {
        let a_doc = document_style;
        for (rel, doc) in [(&row.img_a, a_doc), (&row.img_b, false)] {
            let key = if doc { format!("doc:{rel}") } else { rel.clone() };
            if seen.insert(key.clone()) {
                jobs.push((key, rel.clone(), doc));
            }
        }
    }
    let cached = cache.map(|p| super::cache::load(engine, p)).unwrap_or_default();
    let from_cache = jobs.iter().filter(|j| cached.contains_key(&j.0)).count();
    if from_cache > 0 {
        writeln!(out, "embeddings of {from_cache} of {} images from the cache", jobs.len())
            .map_err(|e| FaceError::Io(e.to_string()))?;
    }
    let jobs_all = jobs.clone();
    jobs.retain(|j| !cached.contains_key(&j.0));
    let results: Mutex<HashMap<String, ImageResult>> = Mutex::new(cached);
    let first_error: Mutex<Option<FaceError>> = Mutex::new(None);
    let next = AtomicUsize::new(0);
    let progress = Progress::new("embedding images", jobs.len());
    let workers = 2;
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((key, rel, doc)) = jobs.get(i) else { break };
                    match embed_image(engine, &base.join(rel), *doc, key) {
                        Ok(r) => {
                            results.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone(), r);
                            progress.tick(1);
                        }
                        Err(e) => {
                            first_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                            next.store(usize::MAX / 2, Ordering::Relaxed);
                            break;
                        }
                    }
                }
            });
        }
    });
    progress.finish();
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(path) = cache.filter(|_| !jobs.is_empty()) {
        super::cache::store(engine, path, &results)?;
    }
    let jobs = jobs_all;
    // The cache may hold other images (say the plain first images of a document-style run): the
    // figures use this file's images only.
    let mut results = results;
    let keys: std::collections::HashSet<&str> = jobs.iter().map(|j| j.0.as_str()).collect();
    results.retain(|key, _| keys.contains(key.as_str()));
    let io = |e: std::io::Error| FaceError::Io(e.to_string());
    let mut detect_failures = Vec::new();
    let mut ms = Vec::new();
    let second_cpu_ms: Vec<f64> = results.values().filter_map(|r| r.second_cpu_ms).collect();
    for (key, _, _) in &jobs {
        match results.get(key) {
            Some(ImageResult { dlib: Some(_), ms: t, .. }) => ms.push(*t),
            _ => {
                writeln!(out, "detect_fail {key}").map_err(io)?;
                detect_failures.push(key.clone());
            }
        }
    }
    let emb = |key: &str| results.get(key).and_then(|r| r.dlib.as_ref());
    let second = |key: &str| results.get(key).and_then(|r| r.second.as_ref());
    let pairs = rows
        .iter()
        .map(|row| {
            let key_a = if document_style { format!("doc:{}", row.img_a) } else { row.img_a.clone() };
            let distance = match (emb(&key_a), emb(&row.img_b)) {
                (Some(a), Some(b)) => Some(engine.compare(a, b).distance),
                _ => None,
            };
            let second_cosine = match (second(&key_a), second(&row.img_b)) {
                (Some(a), Some(b)) => crate::sface::cosine(a, b),
                _ => None,
            };
            ScoredPair {
                img_a: row.img_a.clone(),
                img_b: row.img_b.clone(),
                same: row.same,
                fold: row.fold,
                distance,
                second_cosine,
            }
        })
        .collect();
    let mut embeddings = HashMap::new();
    let mut second = HashMap::new();
    for (key, r) in results {
        if let Some(e) = r.second {
            second.insert(key.clone(), e);
        }
        if let Some(e) = r.dlib {
            embeddings.insert(key, e);
        }
    }
    Ok(ScoredPairs {
        pairs,
        images: jobs.len(),
        detect_failures,
        ms_per_image: ms,
        embeddings,
        second,
        second_cpu_ms,
        document_style,
    })
}

/// Progress on stderr for long runs: a bar redrawn in place on a terminal, else a line every 10 s.
/// Nothing is shown for the first 2 s.
pub struct Progress {
    label: &'static str,
    total: usize,
    done: AtomicUsize,
    start: Instant,
    last: Mutex<Option<Instant>>,
    tty: bool,
}

impl Progress {
    pub fn new(label: &'static str, total: usize) -> Progress {
        Progress {
            label,
            total,
            done: AtomicUsize::new(0),
            start: Instant::now(),
            last: Mutex::new(None),
            tty: std::io::stderr().is_terminal(),
        }
    }

    pub fn tick(&self, n: usize) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        let now = Instant::now();
        let elapsed = now - self.start;
        if elapsed < Duration::from_secs(2) {
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let every = if self.tty { Duration::from_millis(200) } else { Duration::from_secs(10) };
        if last.is_some_and(|t| now - t < every) {
            return;
        }
        *last = Some(now);
        self.draw(done, elapsed);
    }

    fn draw(&self, done: usize, elapsed: Duration) {
        let frac = done as f64 / self.total.max(1) as f64;
        let secs = elapsed.as_secs_f64();
        let left = if frac > 0.0 { secs * (1.0 - frac) / frac } else { 0.0 };
        if self.tty {
            let filled = (frac * 30.0).round() as usize;
            eprint!(
                "\r{} [{}{}] {done}/{} {:.0} s, ~{:.0} s left ",
                self.label,
                "#".repeat(filled.min(30)),
                ".".repeat(30 - filled.min(30)),
                self.total,
                secs,
                left
            );
        } else {
            eprintln!(
                "{}: {done}/{} ({:.0} %) after {:.0} s, ~{:.0} s left",
                self.label,
                self.total,
                100.0 * frac,
                secs,
                left
            );
        }
    }

    /// Ends the bar (a final line if anything was shown).
    pub fn finish(&self) {
        let shown = self.last.lock().unwrap_or_else(|p| p.into_inner()).is_some();
        if shown {
            self.draw(self.done.load(Ordering::Relaxed), self.start.elapsed());
            if self.tty {
                eprintln!();
            }
        }
    }
}
