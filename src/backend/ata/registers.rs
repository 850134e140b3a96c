//! The ATA register file a channel is driven through, and the bits of its status and error
//! registers. The real one is [`super::port_io::LegacyPorts`]; host tests use a simulated drive.

/// Command-block registers by offset from the channel's base port. Offsets 1 and 7 are two
/// registers each: error/status when read, features/command when written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Reg {
    ErrorFeatures = 1,
    SectorCount = 2,
    LbaLow = 3,
    LbaMid = 4,
    LbaHigh = 5,
    Device = 6,
    StatusCommand = 7,
}

/// One ATA channel's registers.
pub trait Registers {
    fn read(&mut self, reg: Reg) -> u8;
    fn write(&mut self, reg: Reg, value: u8);
    /// Alternate status (control block): the status without acknowledging anything.
    fn alt_status(&mut self) -> u8;
    /// Device control (control block): `nIEN`, `SRST`.
    fn set_control(&mut self, value: u8);
    /// Moves one data request's block (whole sectors: one, or a READ MULTIPLE block) from the
    /// data register into `block` (any alignment).
    fn read_block(&mut self, block: &mut [u8]);
    /// Moves one data request's block (whole sectors) from `block` to the data register.
    fn write_block(&mut self, block: &[u8]);
}

/// Bytes per PIO data block (the only logical sector size this driver supports).
pub const SECTOR: usize = 512;

/// Status register bits.
pub mod status {
    pub const ERR: u8 = 0x01;
    pub const DRQ: u8 = 0x08;
    pub const DF: u8 = 0x20;
    pub const DRDY: u8 = 0x40;
    pub const BSY: u8 = 0x80;
}

/// Error register bits (meaningful when status has `ERR`).
pub mod error {
    pub const AMNF: u8 = 0x01;
    pub const TK0NF: u8 = 0x02;
    pub const ABRT: u8 = 0x04;
    pub const MCR: u8 = 0x08;
    pub const IDNF: u8 = 0x10;
    pub const MC: u8 = 0x20;
    pub const UNC: u8 = 0x40;
    pub const ICRC: u8 = 0x80;
}

/// Device control bits.
pub mod control {
    /// Interrupts off: this driver polls.
    pub const NIEN: u8 = 0x02;
    pub const SRST: u8 = 0x04;
}

/// Command opcodes this driver issues.
pub mod command {
    pub const READ_SECTORS: u8 = 0x20;
    pub const READ_SECTORS_EXT: u8 = 0x24;
    pub const READ_DMA_EXT: u8 = 0x25;
    pub const READ_MULTIPLE_EXT: u8 = 0x29;
    pub const WRITE_SECTORS: u8 = 0x30;
    pub const WRITE_SECTORS_EXT: u8 = 0x34;
    pub const WRITE_DMA_EXT: u8 = 0x35;
    pub const WRITE_MULTIPLE_EXT: u8 = 0x39;
    pub const READ_MULTIPLE: u8 = 0xC4;
    pub const WRITE_MULTIPLE: u8 = 0xC5;
    pub const SET_MULTIPLE_MODE: u8 = 0xC6;
    pub const READ_DMA: u8 = 0xC8;
    pub const WRITE_DMA: u8 = 0xCA;
    pub const FLUSH_CACHE: u8 = 0xE7;
    pub const FLUSH_CACHE_EXT: u8 = 0xEA;
    pub const IDENTIFY_DEVICE: u8 = 0xEC;
}
