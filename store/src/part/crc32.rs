//! CRC-32 as the UEFI specification uses it for GPT headers and entry arrays (the IEEE 802.3
//! polynomial, reflected, initial value and final XOR all ones — zlib's `crc32`).

/// The reflected polynomial 0x04C11DB7.
const POLY: u32 = 0xEDB8_8320;

pub fn crc32(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0u32, |crc, &byte| {
        (0..8).fold(crc ^ u32::from(byte), |crc, _| if crc & 1 == 1 { (crc >> 1) ^ POLY } else { crc >> 1 })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // The standard check value, and zlib's answer for an empty input.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }
}
