use super::*;

#[test]
fn c_strings_are_refused_rather_than_cut() {
    let mut field = [0xffu8; 8];
    put_c_string(&mut field, b"wd0").unwrap();
    assert_eq!(&field, b"wd0\0\0\0\0\0");
    assert_eq!(c_string(&field), b"wd0");
    assert_eq!(put_c_string(&mut field, b"1234567"), Ok(()));
    assert_eq!(put_c_string(&mut field, b"12345678"), Err(array_too_large()));
    assert_eq!(put_c_string(&mut field, b"a\0b"), Err(array_too_large()));
    assert_eq!(c_string(b"abc"), b"abc");
}

#[test]
fn reply_ids_and_dead_servers() {
    assert_eq!(check_reply_id(2910, 2910), Ok(()));
    assert_eq!(check_reply_id(71, 2910).unwrap_err().code(), crate::kern::MIG_SERVER_DIED);
    assert_eq!(check_reply_id(2911, 2910).unwrap_err().code(), crate::kern::MIG_REPLY_MISMATCH);
}

#[test]
fn headers_must_fit_their_bytes() {
    let mut buf = [0u8; 48];
    X86_64.put_header(&mut buf, 0x1513, 40, PortName::new(5), PortName::new(6), 2800);
    let header = X86_64.header(&buf[..40]).unwrap();
    assert_eq!((header.size, header.id, header.reply_disposition()), (40, 2800, 0x13));
    assert_eq!((header.remote_port, header.local_port), (PortName::new(5), PortName::new(6)));
    assert!(X86_64.header(&buf[..39]).is_none());
    assert!(X86_64.header(&buf[..31]).is_none());
    I686.put_header(&mut buf, 0x1513, 41, PortName::new(5), PortName::new(6), 2800);
    assert!(I686.header(&buf[..40]).is_none());
    let header = I686.header(&buf[..41]).unwrap();
    assert_eq!((header.local_port, header.id), (PortName::new(6), 2800));
}

#[test]
fn error_replies_round_trip_in_both_abis() {
    let mut buf = [0u8; 64];
    let error = Error::from_const(2505);
    assert_eq!(X86_64.put_error_reply(&mut buf, PortName::new(9), 18, 2910, error), 48);
    assert_eq!(X86_64.check_return_code(&buf[..48]), Err(error));
    assert_eq!(X86_64.check_return_code(&buf[..56]), Err(type_error()));
    // GNU MIG's return-code descriptor: INTEGER_32, 32 bits, one, inline.
    assert_eq!(&buf[32..40], &[2, 32, 0, 0x20, 1, 0, 0, 0]);
    assert_eq!(I686.put_error_reply(&mut buf, PortName::new(9), 18, 2910, error), 32);
    assert_eq!(I686.check_return_code(&buf[..32]), Err(error));
    assert_eq!(&buf[24..28], &[2, 32, 1, 0x10]);
    assert_eq!(X86_64.put_error_reply(&mut buf[..47], PortName::new(9), 18, 2910, error), 0);
}
