//! A truncated gzip, a truncated capture, a corrupt record or block length, a corrupt IEX-TP
//! header and a sequence gap each give a clear error or reported gap naming the file and
//! the byte position in the uncompressed stream; the bars completed before the damage are
//! kept.

// `allow-unwrap-in-tests` covers `#[test]` functions only, not this file's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Cursor;

use common::{et, expected_bars, expected_between, requested, scenario};
use marketpipe_iex::{Gap, ReadError, ReadOptions, read_capture, read_day};
use marketpipe_testkit::hist::{
    CaptureOptions, Container, Fault, HistMessage, SegmentRecord, build_capture,
};

const FILE: &str = "/hist/20240315_IEXTP1_TOPS1.6.pcap.gz";

fn containers() -> [Container; 2] {
    [
        Container::Pcap {
            big_endian: false,
            nanosecond: false,
        },
        Container::default(),
    ]
}

/// Bars of the minutes before the filler (10:00 ET): all but the post-market one.
fn before_filler() -> Vec<marketpipe_domain::Bar> {
    expected_between(0, (0, 0), (10, 0))
}

/// The first segment sent at or after 10:30 ET.
fn mid_filler_segment(options: &CaptureOptions) -> SegmentRecord {
    let clean = build_capture(&scenario(0), options).unwrap();
    *clean
        .summary
        .records
        .iter()
        .find(|r| r.send_time >= et(10, 30, 0, 0, 0))
        .unwrap()
}

fn assert_names_file_and_offset(err: &ReadError, offset: u64) {
    let text = err.to_string();
    assert!(text.contains(FILE), "{text}");
    assert!(
        text.contains(&format!("byte {offset} of the uncompressed stream")),
        "{text}"
    );
    assert_eq!(err.offset(), Some(offset));
    assert_eq!(err.file(), FILE);
}

#[test]
fn truncated_gzip_keeps_earlier_bars() {
    for container in containers() {
        let full = build_capture(
            &scenario(0),
            &CaptureOptions {
                container,
                ..CaptureOptions::default()
            },
        )
        .unwrap();
        let keep = full.bytes.len() / 2;
        let options = CaptureOptions {
            container,
            faults: vec![Fault::TruncateOutput { keep_bytes: keep }],
            ..CaptureOptions::default()
        };
        let cut = build_capture(&scenario(0), &options).unwrap();
        assert_eq!(cut.bytes.len(), keep);
        let day = read_capture(
            Cursor::new(cut.bytes),
            FILE,
            &requested(),
            &ReadOptions::default(),
        );
        let err = day.damage.as_ref().expect("damage reported");
        assert!(matches!(err, ReadError::Gzip { .. }), "{err}");
        let offset = err.offset().unwrap();
        assert_names_file_and_offset(err, offset);
        assert!(err.to_string().contains("ends early"), "{err}");
        assert!(
            offset > 0 && offset < full.summary.uncompressed_bytes,
            "{offset}"
        );
        assert_eq!(day.bars, before_filler(), "{container:?}");
        assert!(!day.stats.end_of_messages);
    }
}

#[test]
fn truncated_plain_capture_names_the_cut_record() {
    for container in containers() {
        let options = CaptureOptions {
            container,
            gzip: false,
            ..CaptureOptions::default()
        };
        let record = mid_filler_segment(&options);
        let keep = usize::try_from(record.offset).unwrap() + 10;
        let cut = build_capture(
            &scenario(0),
            &CaptureOptions {
                faults: vec![Fault::TruncateOutput { keep_bytes: keep }],
                ..options
            },
        )
        .unwrap();
        let day = read_capture(
            Cursor::new(cut.bytes),
            FILE,
            &requested(),
            &ReadOptions::default(),
        );
        let err = day.damage.as_ref().unwrap();
        assert!(matches!(err, ReadError::Truncated { .. }), "{err}");
        assert_names_file_and_offset(err, keep as u64);
        assert!(
            err.to_string()
                .contains(&format!("starting at byte {}", record.offset)),
            "{err}"
        );
        assert_eq!(day.bars, before_filler(), "{container:?}");
    }
}

#[test]
fn corrupt_record_length_names_the_record() {
    for container in containers() {
        for gzip in [true, false] {
            let options = CaptureOptions {
                container,
                gzip,
                ..CaptureOptions::default()
            };
            let record = mid_filler_segment(&options);
            let bad = CaptureOptions {
                faults: vec![Fault::CorruptRecordLength {
                    segment: record.segment,
                }],
                ..options
            };
            let capture = build_capture(&scenario(0), &bad).unwrap();
            let day = read_capture(
                Cursor::new(capture.bytes),
                FILE,
                &requested(),
                &ReadOptions::default(),
            );
            let err = day.damage.as_ref().unwrap();
            assert!(matches!(err, ReadError::Corrupt { .. }), "{err}");
            assert_names_file_and_offset(err, record.offset);
            assert!(err.to_string().contains("4294967280"), "{err}");
            assert_eq!(day.bars, before_filler(), "{container:?} gzip {gzip}");
            assert!(day.gaps.is_empty());
        }
    }
}

#[test]
fn corrupt_iextp_header_names_the_segment() {
    for container in containers() {
        let options = CaptureOptions {
            container,
            ..CaptureOptions::default()
        };
        let record = mid_filler_segment(&options);
        let bad = CaptureOptions {
            faults: vec![Fault::CorruptSegmentHeader {
                segment: record.segment,
            }],
            ..options
        };
        let capture = build_capture(&scenario(0), &bad).unwrap();
        let day = read_capture(
            Cursor::new(capture.bytes),
            FILE,
            &requested(),
            &ReadOptions::default(),
        );
        let err = day.damage.as_ref().unwrap();
        assert_names_file_and_offset(err, record.offset);
        assert!(
            err.to_string().contains("IEX-TP header version 238"),
            "{err}"
        );
        assert_eq!(day.bars, before_filler());
    }
}

#[test]
fn sequence_gap_is_reported_not_fatal() {
    for container in containers() {
        let options = CaptureOptions {
            container,
            ..CaptureOptions::default()
        };
        let clean = build_capture(&scenario(0), &options).unwrap();
        // One gap in the morning trades (segment 3) and one in the filler.
        let mid = mid_filler_segment(&options);
        let bad = CaptureOptions {
            faults: vec![
                Fault::SequenceGap {
                    before_segment: 3,
                    missing: 7,
                },
                Fault::SequenceGap {
                    before_segment: mid.segment,
                    missing: 2,
                },
            ],
            ..options
        };
        let capture = build_capture(&scenario(0), &bad).unwrap();
        let day = read_capture(
            Cursor::new(capture.bytes),
            FILE,
            &requested(),
            &ReadOptions::default(),
        );
        assert!(day.damage.is_none(), "{:?}", day.damage);
        let third = capture.summary.record_of(3).unwrap();
        let later = capture.summary.record_of(mid.segment).unwrap();
        assert_eq!(
            day.gaps,
            vec![
                Gap {
                    file: FILE.into(),
                    offset: third.offset,
                    expected: clean.summary.record_of(3).unwrap().first_seq,
                    got: third.first_seq
                },
                Gap {
                    file: FILE.into(),
                    offset: later.offset,
                    expected: later.first_seq - 2,
                    got: later.first_seq
                },
            ]
        );
        assert_eq!(day.gaps[0].missing(), 7);
        let text = day.gaps[0].to_string();
        assert!(
            text.contains(FILE)
                && text.contains(&format!("byte {}", third.offset))
                && text.contains("7 messages missing"),
            "{text}"
        );
        // Nothing was really lost in this synthetic file, so every bar is there.
        assert_eq!(day.bars, expected_bars(0));
        assert!(!day.is_clean());
    }
}

#[test]
fn a_short_trade_message_is_a_corrupt_block() {
    let mut messages = scenario(0);
    let at = messages
        .iter()
        .position(|m| m.ts_ns() >= et(10, 30, 0, 0, 0))
        .unwrap();
    messages.insert(
        at,
        HistMessage::Raw {
            ts_ns: et(10, 30, 0, 0, 0),
            bytes: vec![b'T'; 20],
        },
    );
    let capture = build_capture(&messages, &CaptureOptions::default()).unwrap();
    let day = read_capture(
        Cursor::new(capture.bytes),
        FILE,
        &requested(),
        &ReadOptions::default(),
    );
    let err = day.damage.unwrap();
    assert!(
        err.to_string().contains("Trade Report message of 20 bytes"),
        "{err}"
    );
    assert_eq!(day.bars, before_filler());
}

#[test]
fn not_a_capture_and_missing_files() {
    for (bytes, shown) in [
        (b"hello world".to_vec(), "68 65 6c 6c"),
        (Vec::new(), "empty"),
    ] {
        let day = read_capture(
            Cursor::new(bytes),
            FILE,
            &requested(),
            &ReadOptions::default(),
        );
        let err = day.damage.unwrap();
        assert!(matches!(err, ReadError::NotACapture { .. }), "{err}");
        assert!(
            err.to_string().contains(FILE) && err.to_string().contains(shown),
            "{err}"
        );
    }
    let err = read_day(
        std::path::Path::new("/nonexistent/x.pcap.gz"),
        &requested(),
        &ReadOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ReadError::Open { .. }));
    assert!(err.to_string().contains("/nonexistent/x.pcap.gz"));
}
