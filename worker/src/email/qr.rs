//! A ticket's QR code as a small PNG: one bit per pixel, a few hundred bytes.

use qrcode::{Color, EcLevel, QrCode};

/// Pixels per module: 4 makes a 128-character ticket code (49 modules) a
/// 228 px image with its quiet zone, easy for a phone at arm's length.
const SCALE: usize = 4;
/// The blank margin a scanner needs, in modules (ISO/IEC 18004).
const QUIET_ZONE: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("encoding the QR code: {0}")]
    Code(#[from] qrcode::types::QrError),
    #[error("writing the PNG: {0}")]
    Png(#[from] png::EncodingError),
}

/// The PNG of `content` as a QR code (error correction M), and its side in
/// pixels.
pub fn qr_png(content: &str) -> Result<(Vec<u8>, u32), QrError> {
    let code = QrCode::with_error_correction_level(content.as_bytes(), EcLevel::M)?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET_ZONE) * SCALE;
    let row_bytes = side.div_ceil(8);
    // Greyscale at one bit: 1 is white, so start white and darken modules.
    let mut pixels = vec![0xff_u8; row_bytes * side];
    for y in 0..side {
        let module_y = (y / SCALE).checked_sub(QUIET_ZONE);
        for x in 0..side {
            let module_x = (x / SCALE).checked_sub(QUIET_ZONE);
            let dark = match (module_x, module_y) {
                (Some(mx), Some(my)) if mx < modules && my < modules => {
                    colors[my * modules + mx] == Color::Dark
                }
                _ => false,
            };
            if dark {
                pixels[y * row_bytes + x / 8] &= !(0x80 >> (x % 8));
            }
        }
    }
    let side = u32::try_from(side).unwrap_or(u32::MAX);
    let mut png = Vec::with_capacity(1024);
    let mut encoder = png::Encoder::new(&mut png, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    // Rows repeat SCALE times and runs are long: no filter compresses best.
    encoder.set_filter(png::FilterType::NoFilter);
    encoder.set_compression(png::Compression::Best);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok((png, side))
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
    fn a_ticket_code_round_trips_through_the_png() {
        let signer = ticket_code::Signer::from_seed(&ticket_code::Signer::generate_seed()).unwrap();
        let code = signer.code(uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let (png, side) = qr_png(&code).unwrap();
        assert_eq!(read(&png), code);
        assert_eq!(side, 228, "a ticket code is a version 8 symbol");
        assert!(png.len() < 2_000, "{} bytes", png.len());
    }
}
