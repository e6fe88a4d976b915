//! Counting log records on the protobuf wire without decoding them, so that what decoding will
//! allocate is known (and refused when too much) before it is allocated.

use prost::encoding::{decode_key, decode_varint, WireType};

/// Log records in an `ExportLogsServiceRequest` (resource_logs 1 > scope_logs 2 >
/// log_records 2); `None` when the bytes are not well-formed protobuf.
pub(crate) fn count_log_records(body: &[u8]) -> Option<usize> {
    let mut n = 0;
    for resource_logs in fields(body, 1)? {
        for scope_logs in fields(resource_logs, 2)? {
            n += fields(scope_logs, 2)?.len();
        }
    }
    Some(n)
}

/// The contents of every length-delimited field `tag` of the message `buf`.
fn fields(mut buf: &[u8], tag: u32) -> Option<Vec<&[u8]>> {
    let mut found = Vec::new();
    while !buf.is_empty() {
        let (field, wire) = decode_key(&mut buf).ok()?;
        match wire {
            WireType::Varint => {
                decode_varint(&mut buf).ok()?;
            }
            WireType::SixtyFourBit => buf = buf.get(8..)?,
            WireType::ThirtyTwoBit => buf = buf.get(4..)?,
            WireType::LengthDelimited => {
                let len = usize::try_from(decode_varint(&mut buf).ok()?).ok()?;
                let (value, rest) = (buf.get(..len)?, buf.get(len..)?);
                if field == tag {
                    found.push(value);
                }
                buf = rest;
            }
            WireType::StartGroup | WireType::EndGroup => return None,
        }
    }
    Some(found)
}
