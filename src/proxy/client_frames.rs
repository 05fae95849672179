//! Which WebSocket frames a client sends, read as the bytes pass through the tunnel, to tell use from a tab
//! that is merely open. A Streamlit tab sends a data frame for every widget change and rerun, and nothing
//! but control frames (pong, close) while it sits unused; only data frames keep a session from idling out.
//!
//! The frames are only looked at, never changed or held back (RFC 6455 section 5.2). Should the bytes ever
//! stop reading as frames, everything after counts as use: the tunnel's session then behaves as before this
//! watch existed, rather than ending under someone working in it.

/// The longest frame header: 2 bytes, an 8-byte length, a 4-byte masking key.
const MAX_HEADER: usize = 14;

#[derive(Debug, Default)]
pub struct FrameWatch {
    header: [u8; MAX_HEADER],
    /// Header bytes collected so far of the frame being read.
    have: usize,
    /// Payload bytes of the current frame still to pass.
    skip: u64,
    /// The stream stopped making sense as frames.
    lost: bool,
}

impl FrameWatch {
    /// Follows bytes the client sent; true when they hold the start of a data frame (text, binary or a
    /// continuation), or when the stream can no longer be read as frames.
    pub fn feed(&mut self, mut bytes: &[u8]) -> bool {
        let mut data = false;
        while !bytes.is_empty() {
            if self.lost {
                return true;
            }
            if self.skip > 0 {
                let passed = usize::try_from(self.skip).unwrap_or(usize::MAX).min(bytes.len());
                self.skip -= passed as u64;
                bytes = &bytes[passed..];
                continue;
            }
            self.header[self.have] = bytes[0];
            self.have += 1;
            bytes = &bytes[1..];
            match parse_header(&self.header[..self.have]) {
                Header::Incomplete => {}
                Header::Complete { payload, is_data } => {
                    data |= is_data;
                    self.skip = payload;
                    self.have = 0;
                }
                Header::Invalid => {
                    self.lost = true;
                    data = true;
                }
            }
        }
        data
    }
}

enum Header {
    Incomplete,
    Complete { payload: u64, is_data: bool },
    Invalid,
}

fn parse_header(header: &[u8]) -> Header {
    let [first, second, rest @ ..] = header else { return Header::Incomplete };
    let opcode = first & 0x0f;
    let masked = second & 0x80 != 0;
    let (length_bytes, short_length) = match second & 0x7f {
        126 => (2, None),
        127 => (8, None),
        length => (0, Some(u64::from(length))),
    };
    let size = length_bytes + if masked { 4 } else { 0 };
    if rest.len() < size {
        return Header::Incomplete;
    }
    let payload = match short_length {
        Some(length) => length,
        None => {
            let mut value = [0u8; 8];
            value[8 - length_bytes..].copy_from_slice(&rest[..length_bytes]);
            u64::from_be_bytes(value)
        }
    };
    // The most significant bit of a 64-bit length must be 0; control frames carry at most 125 bytes.
    let is_control = opcode & 0x08 != 0;
    if payload >> 63 != 0 || (is_control && payload > 125) {
        return Header::Invalid;
    }
    // Reserved opcodes (3-7, 11-15) count as data: whatever they are, they are not a tab sitting idle.
    Header::Complete { payload, is_data: !matches!(opcode, 0x8..=0xA) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame, as browsers send them.
    fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x12, 0x34, 0x56, 0x78];
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn pongs_and_close_are_not_use_but_text_binary_and_continuations_are() {
        for (opcode, is_data) in [(0x9, false), (0xA, false), (0x8, false), (0x1, true), (0x2, true), (0x0, true)] {
            let mut watch = FrameWatch::default();
            assert_eq!(watch.feed(&frame(opcode, b"abc")), is_data, "opcode {opcode:#x}");
        }
    }

    #[test]
    fn follows_frames_of_every_length_form_across_any_split() {
        // A pong, a 126-byte binary frame (16-bit length), a pong, a 70,000-byte text frame (64-bit length),
        // and a pong whose payload looks like a data frame's header.
        let mut stream = frame(0xA, b"");
        let first_data = stream.len();
        stream.extend(frame(0x2, &[0x81; 126]));
        stream.extend(frame(0xA, b"x"));
        let second_data = stream.len();
        stream.extend(frame(0x1, &vec![b'a'; 70_000]));
        stream.extend(frame(0xA, &[0x81, 0x85, 1, 2, 3, 4]));
        for split in [1, 2, 3, 7, 13, 100, 4096, stream.len()] {
            let mut watch = FrameWatch::default();
            let mut seen = Vec::new();
            for (index, chunk) in stream.chunks(split).enumerate() {
                if watch.feed(chunk) {
                    seen.push(index * split);
                }
            }
            // Each data frame is reported in the chunk that completes its header (8 and 14 bytes long).
            let mut expected: Vec<usize> =
                [first_data + 7, second_data + 13].iter().map(|&last| last / split * split).collect();
            expected.dedup();
            assert_eq!(seen, expected, "split {split}");
            assert!(!watch.lost && watch.have == 0 && watch.skip == 0, "ends on a frame boundary");
        }
    }

    #[test]
    fn only_pongs_are_never_use() {
        let mut watch = FrameWatch::default();
        for _ in 0..1000 {
            assert!(!watch.feed(&frame(0xA, b"keepalive")));
        }
    }

    #[test]
    fn a_stream_that_is_not_frames_counts_as_use_from_then_on() {
        let mut watch = FrameWatch::default();
        // A ping claiming 200 bytes: control frames hold at most 125.
        assert!(watch.feed(&[0x89, 0x80 | 126, 0, 200, 1, 2, 3, 4]));
        assert!(watch.feed(&frame(0xA, b"")), "lost: everything after counts");
        let mut watch = FrameWatch::default();
        let mut huge = vec![0x82, 0x80 | 127];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        huge.extend_from_slice(&[1, 2, 3, 4]);
        assert!(watch.feed(&huge), "a 64-bit length with its top bit set");
    }
}
