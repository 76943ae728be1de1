//! Where a client's first request ends, followed in the bytes it sends, so that a
//! connection can be held to a deadline for it without the HTTP server's help: HTTP/2
//! frames are skipped by their length until a header block on a stream ends; an
//! HTTP/1 request head ends at its blank line. On the gRPC port a connection is HTTP/2
//! while its first bytes follow the HTTP/2 preface, and HTTP/1 (gRPC-Web from a browser)
//! from the first byte that does not. Nothing is validated here: the HTTP server reads
//! the same bytes and refuses what is malformed.

/// The HTTP/2 connection preface.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Every HTTP/2 frame starts with a header this long: length (24 bits), type, flags,
/// stream id (31 bits).
const FRAME_HEADER_LEN: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;

/// What the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    /// gRPC: HTTP/2 with prior knowledge (the connection starts with the preface), or
    /// HTTP/1 for gRPC-Web.
    Grpc,
}

/// Follows a connection's first bytes until its first request's headers are complete.
#[derive(Debug)]
pub struct Scanner(State);

#[derive(Debug)]
enum State {
    /// HTTP/1: line feeds just seen in a row (carriage returns aside); two end the head.
    Head {
        line_feeds: u8,
    },
    /// Bytes of the HTTP/2 preface seen so far, every one as the preface has it.
    Preface {
        matched: usize,
    },
    /// HTTP/2: the next frame's header, as far as it came.
    FrameHeader {
        bytes: [u8; FRAME_HEADER_LEN],
        filled: usize,
    },
    /// HTTP/2: the current frame's payload still to come, and whether the frame ends a
    /// request's header block.
    Payload {
        left: usize,
        ends_headers: bool,
    },
    Complete,
}

impl Scanner {
    pub fn new(protocol: Protocol) -> Self {
        Self(match protocol {
            Protocol::Http1 => State::Head { line_feeds: 0 },
            Protocol::Grpc => State::Preface { matched: 0 },
        })
    }

    /// Follows `bytes`, the next ones the client sent; true once the first request's
    /// headers are complete (and from then on).
    pub fn feed(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() && !matches!(self.0, State::Complete) {
            match &mut self.0 {
                State::Head { line_feeds } => {
                    let (byte, rest) = (bytes[0], &bytes[1..]);
                    bytes = rest;
                    *line_feeds = match byte {
                        b'\n' => *line_feeds + 1,
                        b'\r' => *line_feeds,
                        _ => 0,
                    };
                    if *line_feeds == 2 {
                        self.0 = State::Complete;
                    }
                }
                State::Preface { matched } => {
                    if bytes[0] == PREFACE[*matched] {
                        *matched += 1;
                        bytes = &bytes[1..];
                        if *matched == PREFACE.len() {
                            self.0 = next_frame();
                        }
                    } else {
                        // HTTP/1: the bytes matched so far open its head.
                        let mut head = Self::new(Protocol::Http1);
                        head.feed(&PREFACE[..*matched]);
                        self.0 = head.0;
                    }
                }
                State::FrameHeader {
                    bytes: header,
                    filled,
                } => {
                    let n = (FRAME_HEADER_LEN - *filled).min(bytes.len());
                    header[*filled..*filled + n].copy_from_slice(&bytes[..n]);
                    *filled += n;
                    bytes = &bytes[n..];
                    if *filled == FRAME_HEADER_LEN {
                        self.0 = payload_of(header);
                    }
                }
                State::Payload { left, ends_headers } => {
                    let n = (*left).min(bytes.len());
                    *left -= n;
                    bytes = &bytes[n..];
                    if *left == 0 {
                        self.0 = after_payload(*ends_headers);
                    }
                }
                State::Complete => {}
            }
        }
        matches!(self.0, State::Complete)
    }
}

fn next_frame() -> State {
    State::FrameHeader {
        bytes: [0; FRAME_HEADER_LEN],
        filled: 0,
    }
}

/// What follows a frame header: its payload (an empty one is over at once).
fn payload_of(header: &[u8; FRAME_HEADER_LEN]) -> State {
    let length =
        usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
    let (kind, flags) = (header[3], header[4]);
    let stream = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
    let ends_headers =
        matches!(kind, HEADERS | CONTINUATION) && flags & END_HEADERS != 0 && stream != 0;
    if length == 0 {
        after_payload(ends_headers)
    } else {
        State::Payload {
            left: length,
            ends_headers,
        }
    }
}

fn after_payload(ends_headers: bool) -> State {
    if ends_headers {
        State::Complete
    } else {
        next_frame()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len().to_be_bytes();
        let mut f = vec![len[5], len[6], len[7], kind, flags];
        f.extend(stream.to_be_bytes());
        f.extend(payload);
        f
    }

    /// Whether the scanner finds a complete request in `bytes`, fed whole and one
    /// byte at a time (both must agree).
    fn complete(protocol: Protocol, bytes: &[u8]) -> bool {
        let whole = Scanner::new(protocol).feed(bytes);
        let mut scanner = Scanner::new(protocol);
        let bytewise = bytes.iter().fold(false, |_, b| scanner.feed(&[*b]));
        assert_eq!(whole, bytewise, "chunking changed the verdict");
        whole
    }

    #[test]
    fn http2_requests_complete_with_their_header_block() {
        let settings = frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100]);
        let ack = frame(0x4, 0x1, 0, &[]);
        let ping = frame(0x6, 0, 0, &[0; 8]);
        let window = frame(0x8, 0, 0, &[0, 1, 0, 0]);
        let opening: Vec<u8> = [PREFACE, &settings, &ack, &ping, &window].concat();
        assert!(!complete(Protocol::Grpc, &opening), "no request yet");
        assert!(!complete(Protocol::Grpc, PREFACE));

        // Headers in one frame.
        let headers = frame(HEADERS, END_HEADERS | 0x1, 1, &[0x82; 40]);
        assert!(complete(Protocol::Grpc, &[&opening[..], &headers].concat()));
        // Not before the frame's last byte has come.
        let cut = [&opening[..], &headers[..headers.len() - 1]].concat();
        assert!(!complete(Protocol::Grpc, &cut));

        // A header block split over CONTINUATION frames ends with the last one.
        let first = frame(HEADERS, 0, 3, &[0x82; 10]);
        let middle = frame(CONTINUATION, 0, 3, &[0x84; 10]);
        let last = frame(CONTINUATION, END_HEADERS, 3, &[]);
        let split = [&opening[..], &first, &middle].concat();
        assert!(!complete(Protocol::Grpc, &split));
        assert!(complete(Protocol::Grpc, &[&split[..], &last].concat()));

        // Payloads are skipped by length, whatever they hold; stream 0 holds no request.
        let lookalike = frame(0x0, 0, 1, &headers);
        assert!(!complete(Protocol::Grpc, &[PREFACE, &lookalike].concat()));
        let on_zero = frame(HEADERS, END_HEADERS, 0, &[0x82]);
        assert!(!complete(Protocol::Grpc, &[PREFACE, &on_zero].concat()));
    }

    #[test]
    fn http1_requests_complete_with_their_head() {
        assert!(complete(
            Protocol::Http1,
            b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n"
        ));
        assert!(complete(Protocol::Http1, b"GET / HTTP/1.1\nhost: x\n\n"));
        assert!(!complete(Protocol::Http1, b"GET / HTTP/1.1\r\nhost: x\r\n"));
        assert!(!complete(
            Protocol::Http1,
            b"GET / HTTP/1.1\r\nhost: x\r\nx\r\n"
        ));
        assert!(!complete(Protocol::Http1, b""));
    }

    #[test]
    fn the_grpc_port_follows_http1_from_the_first_byte_off_the_preface() {
        let web = b"POST /herald.v1.WebhookService/GetHealth HTTP/1.1\r\ncontent-type: application/grpc-web+proto\r\n\r\n";
        assert!(complete(Protocol::Grpc, web));
        assert!(!complete(Protocol::Grpc, &web[..web.len() - 2]));
        assert!(complete(Protocol::Grpc, b"PUT / HTTP/1.1\r\n\r\n"));
        // Off the preface after its first line: that line feed counts toward the head's end.
        assert!(complete(Protocol::Grpc, b"PRI * HTTP/2.0\r\n\n"));
        assert!(!complete(Protocol::Grpc, b"PRI * HTTP/2.0\r\nx"));
    }
}
