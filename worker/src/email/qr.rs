//! A ticket's QR code as a small PNG: one bit per pixel, about 2 KB.

use qrcode::{
    Color, EcLevel,
    bits::Bits,
    canvas::{Canvas, MaskPattern, Module},
    types::{QrError as Unencodable, Version},
};

/// Pixels per module: 4 makes a 128-character ticket code (49 modules) a
/// 228 px image with its quiet zone, easy for a phone at arm's length.
const SCALE: usize = 4;
/// The blank margin a scanner needs, in modules (ISO/IEC 18004).
const QUIET_ZONE: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("encoding the QR code: {0}")]
    Code(#[from] Unencodable),
    #[error("writing the PNG: {0}")]
    Png(#[from] png::EncodingError),
}

/// The PNG of `content` as a QR code (byte mode, error correction M), and
/// its side in pixels.
pub fn qr_png(content: &str) -> Result<(Vec<u8>, u32), QrError> {
    let (modules, width) = symbol(content.as_bytes())?;
    let side = (width + 2 * QUIET_ZONE) * SCALE;
    let row_bytes = side.div_ceil(8);
    // Greyscale at one bit: 1 is white, so start white and darken modules,
    // a row of modules at a time, repeated SCALE times.
    let mut pixels = vec![0xff_u8; row_bytes * side];
    let mut row = vec![0xff_u8; row_bytes];
    for (module_y, module_row) in modules.chunks_exact(width).enumerate() {
        row.fill(0xff);
        for (module_x, _) in module_row.iter().enumerate().filter(|(_, dark)| **dark) {
            let left = (QUIET_ZONE + module_x) * SCALE;
            for x in left..left + SCALE {
                row[x / 8] &= !(0x80 >> (x % 8));
            }
        }
        let top = (QUIET_ZONE + module_y) * SCALE;
        for line in pixels.chunks_exact_mut(row_bytes).skip(top).take(SCALE) {
            line.copy_from_slice(&row);
        }
    }
    let side = u32::try_from(side).unwrap_or(u32::MAX);
    write_png(pixels, side)
}

fn write_png(pixels: Vec<u8>, side: u32) -> Result<(Vec<u8>, u32), QrError> {
    let mut png = Vec::with_capacity(1024);
    let mut encoder = png::Encoder::new(&mut png, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    // Each row repeats SCALE times: filtered against the row above, the
    // repeats are zeros, which the fast compressor packs well.
    encoder.set_filter(png::FilterType::Up);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok((png, side))
}

/// The smallest symbol that holds `data`, with the mask of the lowest
/// penalty (ISO/IEC 18004 §7.8.3), dark modules `true`, row by row, and its
/// width. The masks are scored here rather than by `QrCode::new`, which
/// takes about a millisecond a symbol: most of a worker's time per email.
fn symbol(data: &[u8]) -> Result<(Vec<bool>, usize), QrError> {
    let (version, bits) = (1..=40)
        .map(Version::Normal)
        .find_map(|version| {
            let mut bits = Bits::new(version);
            let fits =
                bits.push_byte_data(data).is_ok() && bits.push_terminator(EcLevel::M).is_ok();
            fits.then_some((version, bits))
        })
        .ok_or(Unencodable::DataTooLong)?;
    let (data, error_correction) =
        qrcode::ec::construct_codewords(&bits.into_bytes(), version, EcLevel::M)?;
    let mut canvas = Canvas::new(version, EcLevel::M);
    canvas.draw_all_functional_patterns();
    canvas.draw_data(&data, &error_correction);
    let side = version.width();
    let width = usize::try_from(side).map_err(|_| Unencodable::InvalidVersion)?;
    // Each module's colour, and whether a mask may invert it (data modules,
    // not the patterns).
    let mut dark = Vec::with_capacity(width * width);
    let mut maskable = Vec::with_capacity(width * width);
    for y in 0..side {
        for x in 0..side {
            let (color, data) = match canvas.get(x, y) {
                Module::Unmasked(color) => (color, true),
                Module::Masked(color) => (color, false),
                Module::Empty => (Color::Light, false),
            };
            dark.push(color == Color::Dark);
            maskable.push(data);
        }
    }
    let mut masked = vec![false; width * width];
    let mut best = (usize::MAX, MaskPattern::Checkerboard);
    for (mask, inverts) in MASKS.iter().zip(mask_grids(width).iter()) {
        for (i, module) in masked.iter_mut().enumerate() {
            *module = dark[i] ^ (maskable[i] & inverts[i]);
        }
        let score = penalty(&masked, width);
        if score < best.0 {
            best = (score, mask.0);
        }
    }
    canvas.apply_mask(best.1);
    let colors = canvas
        .into_colors()
        .into_iter()
        .map(|color| color == Color::Dark)
        .collect();
    Ok((colors, width))
}

/// Where a mask inverts a data module.
type Inverts = fn(usize, usize) -> bool;

/// For each mask, whether it inverts each module of a symbol.
type MaskGrids = std::sync::Arc<Vec<Vec<bool>>>;

/// Where each of the eight masks inverts, module by module, for a symbol
/// `width` wide: worked out once per width (there are 40).
fn mask_grids(width: usize) -> MaskGrids {
    static GRIDS: std::sync::Mutex<Vec<(usize, MaskGrids)>> = std::sync::Mutex::new(Vec::new());
    let mut grids = GRIDS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, known)) = grids.iter().find(|(known, _)| *known == width) {
        return known.clone();
    }
    let made = std::sync::Arc::new(
        MASKS
            .iter()
            .map(|(_, inverts)| {
                (0..width * width)
                    .map(|i| inverts(i % width, i / width))
                    .collect()
            })
            .collect::<Vec<Vec<bool>>>(),
    );
    grids.push((width, made.clone()));
    made
}

/// The eight data masks of ISO/IEC 18004 (Table 10).
const MASKS: [(MaskPattern, Inverts); 8] = [
    (MaskPattern::Checkerboard, |x, y| (x + y) % 2 == 0),
    (MaskPattern::HorizontalLines, |_, y| y % 2 == 0),
    (MaskPattern::VerticalLines, |x, _| x % 3 == 0),
    (MaskPattern::DiagonalLines, |x, y| (x + y) % 3 == 0),
    (MaskPattern::LargeCheckerboard, |x, y| {
        (y / 2 + x / 3) % 2 == 0
    }),
    (MaskPattern::Fields, |x, y| (x * y) % 2 + (x * y) % 3 == 0),
    (MaskPattern::Diamonds, |x, y| {
        ((x * y) % 2 + (x * y) % 3) % 2 == 0
    }),
    (MaskPattern::Meadow, |x, y| {
        ((x + y) % 2 + (x * y) % 3) % 2 == 0
    }),
];

/// The four penalty rules of ISO/IEC 18004 §7.8.3.1: runs of five or more
/// in a line, 2×2 blocks, finder-like 1:1:3:1:1 patterns beside four light
/// modules (each side counted), and an imbalance of dark and light.
fn penalty(modules: &[bool], width: usize) -> usize {
    if width <= 64 {
        penalty_of_bits(modules, width)
    } else {
        penalty_of_lines(modules, width)
    }
}

/// [`penalty`] module by module, for a symbol of any width.
fn penalty_of_lines(modules: &[bool], width: usize) -> usize {
    let mut score = 0;
    for line in 0..width {
        score += line_penalty(width, |i| modules[line * width + i]);
        score += line_penalty(width, |i| modules[i * width + line]);
    }
    for y in 0..width - 1 {
        for x in 0..width - 1 {
            let color = modules[y * width + x];
            if modules[y * width + x + 1] == color
                && modules[(y + 1) * width + x] == color
                && modules[(y + 1) * width + x + 1] == color
            {
                score += 3;
            }
        }
    }
    score + balance_penalty(modules)
}

fn balance_penalty(modules: &[bool]) -> usize {
    let dark = modules.iter().filter(|&&dark| dark).count();
    let percent = dark * 100 / modules.len().max(1);
    10 * (percent.abs_diff(50) / 5)
}

/// Runs of five or more, and finder-like patterns, along one row or column.
fn line_penalty(width: usize, dark: impl Fn(usize) -> bool) -> usize {
    let mut score = 0;
    let mut run = 1;
    for i in 1..=width {
        if i < width && dark(i) == dark(i - 1) {
            run += 1;
        } else {
            if run >= 5 {
                score += 3 + (run - 5);
            }
            run = 1;
        }
    }
    let light = |from: usize| (from..from + 4).all(|i| !dark(i));
    for start in 0..width.saturating_sub(6) {
        let finder = (0..7).all(|i| dark(start + i) == FINDER[i]);
        if finder && start >= 4 && light(start - 4) {
            score += 40;
        }
        if finder && start + 11 <= width && light(start + 7) {
            score += 40;
        }
    }
    score
}

/// Dark, light, dark ×3, light, dark.
const FINDER: [bool; 7] = [true, false, true, true, true, false, true];

/// [`penalty`] for symbols up to 64 modules wide (version 11, which holds
/// any ticket code), each line a `u64`: the same rules without a branch per
/// module, which random data would mispredict (four times faster).
fn penalty_of_bits(modules: &[bool], width: usize) -> usize {
    let mut rows = [0u64; 64];
    let mut columns = [0u64; 64];
    for (i, &dark) in modules.iter().enumerate() {
        let (x, y) = (i % width, i / width);
        rows[y] |= u64::from(dark) << x;
        columns[x] |= u64::from(dark) << y;
    }
    // Bits 0..n set.
    let first = |n: usize| if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
    // Bit i set where the pattern starts at i (`pattern[k]` at i + k).
    let starts = |line: u64, pattern: &[bool]| {
        let mut at = first(width + 1 - pattern.len());
        for (k, &dark) in pattern.iter().enumerate() {
            at &= if dark { line >> k } else { !(line >> k) };
        }
        at
    };
    let light = [false; 4];
    let finder_then_light: Vec<bool> = FINDER.iter().chain(&light).copied().collect();
    let light_then_finder: Vec<bool> = light.iter().chain(&FINDER).copied().collect();
    let mut score = 0;
    for &line in rows[..width].iter().chain(&columns[..width]) {
        // Bit i: modules i..i+5 all alike.
        let alike = !(line ^ (line >> 1));
        let five = alike & (alike >> 1) & (alike >> 2) & (alike >> 3) & first(width - 4);
        // A run of n ≥ 5 sets n − 4 bits of `five`, and costs 3 + (n − 5).
        let runs = five & !(five << 1);
        score += (five.count_ones() + 2 * runs.count_ones()) as usize;
        score += 40 * starts(line, &finder_then_light).count_ones() as usize;
        score += 40 * starts(line, &light_then_finder).count_ones() as usize;
    }
    for pair in rows[..width].windows(2) {
        let (top, bottom) = (pair[0], pair[1]);
        let blocks = !(top ^ (top >> 1)) & !(bottom ^ (bottom >> 1)) & !(top ^ bottom);
        score += 3 * (blocks & first(width - 1)).count_ones() as usize;
    }
    score + balance_penalty(modules)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes the PNG back to greyscale and reads the QR code in it.
    fn read(png_bytes: &[u8]) -> String {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().unwrap();
        let mut buffer = vec![0; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut buffer).unwrap();
        let (width, height) = (frame.width as usize, frame.height as usize);
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
            buffer[y * frame.line_size + x]
        });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1);
        grids[0].decode().unwrap().1
    }

    #[test]
    fn the_penalty_counts_runs_blocks_and_imbalance() {
        let width = 21;
        // Each of 42 lines one run of 21 (3 + 16), 400 blocks (3 each), and
        // all dark (10 per 5 % away from half).
        assert_eq!(
            penalty(&vec![true; width * width], width),
            42 * 19 + 400 * 3 + 100
        );
        let checkerboard: Vec<bool> = (0..width * width)
            .map(|i| (i % width + i / width) % 2 == 0)
            .collect();
        assert_eq!(penalty(&checkerboard, width), 0);
        let mut finder = checkerboard.clone();
        // Row 0: light, then dark-light-dark-dark-dark-light-dark at 4..11.
        for (x, dark) in [
            false, false, false, false, true, false, true, true, true, false, true,
        ]
        .into_iter()
        .enumerate()
        {
            finder[x] = dark;
        }
        assert!(penalty(&finder, width) >= 40);
    }

    #[test]
    fn both_ways_of_scoring_agree() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for width in [21, 25, 49, 57, 64] {
            for _ in 0..50 {
                let modules: Vec<bool> = (0..width * width)
                    .map(|i| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        // Clumpy on some rows, so long runs and blocks occur.
                        if (i / width) % 3 == 0 {
                            seed % 7 < 5
                        } else {
                            seed.is_multiple_of(2)
                        }
                    })
                    .collect();
                assert_eq!(
                    penalty_of_bits(&modules, width),
                    penalty_of_lines(&modules, width),
                    "width {width}"
                );
            }
        }
    }

    #[test]
    fn a_ticket_code_round_trips_through_the_png() {
        let signer = ticket_code::Signer::from_seed(&ticket_code::Signer::generate_seed()).unwrap();
        for _ in 0..20 {
            let code = signer.code(uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
            let (png, side) = qr_png(&code).unwrap();
            assert_eq!(read(&png), code);
            assert_eq!(side, 228, "a ticket code is a version 8 symbol");
            assert!(png.len() < 2_500, "{} bytes", png.len());
        }
    }
}
