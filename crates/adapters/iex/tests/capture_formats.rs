//! The synthetic day gives exactly the expected bars in every capture container, byte
//! order, timestamp resolution and TOPS version, gzip'd or not, with or without VLAN tags
//! and IP options.

// `allow-unwrap-in-tests` covers `#[test]` functions only, not this file's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Cursor;
use std::time::Duration;

use common::{expected_bars, requested, scenario, sym};
use marketpipe_iex::{
    CaptureFormat, CaptureReader, PricePolicy, ReadError, ReadOptions, TopsVersion, read_capture,
    read_day,
};
use marketpipe_testkit::hist::{CaptureOptions, Container, Fault, Tops, build_capture};

fn containers() -> Vec<Container> {
    vec![
        Container::Pcap {
            big_endian: false,
            nanosecond: false,
        },
        Container::Pcap {
            big_endian: true,
            nanosecond: true,
        },
        Container::PcapNg {
            big_endian: false,
            tsresol: 6,
            simple_packets: false,
            extra_blocks: false,
        },
        Container::PcapNg {
            big_endian: true,
            tsresol: 9,
            simple_packets: false,
            extra_blocks: true,
        },
        Container::PcapNg {
            big_endian: false,
            tsresol: 6,
            simple_packets: true,
            extra_blocks: false,
        },
    ]
}

fn name(tops: Tops, gzip: bool) -> String {
    format!(
        "20240315_IEXTP1_TOPS{}.pcap{}",
        tops.as_str(),
        if gzip { ".gz" } else { "" }
    )
}

#[test]
fn every_container_and_version_gives_the_expected_bars() {
    let messages = scenario(0);
    let mut i = 0;
    for container in containers() {
        for tops in [Tops::V1_5, Tops::V1_6] {
            i += 1;
            let options = CaptureOptions {
                container,
                tops,
                gzip: i % 2 == 0,
                vlan_tags: match i % 3 {
                    0 => vec![],
                    1 => vec![1013],
                    _ => vec![100, 1013],
                },
                ip_options: i % 4 == 1,
                frame_padding: i % 5,
                messages_per_segment: 1 + i % 7,
                ..CaptureOptions::default()
            };
            let capture = build_capture(&messages, &options).unwrap();
            let file = name(tops, options.gzip);
            let day = read_capture(
                Cursor::new(capture.bytes),
                file.clone(),
                &requested(),
                &ReadOptions::default(),
            );
            let label = format!("{container:?} {tops:?} {options:?}");
            assert!(day.damage.is_none(), "{label}: {:?}", day.damage);
            assert!(day.gaps.is_empty(), "{label}: {:?}", day.gaps);
            assert_eq!(day.bars, expected_bars(0), "{label}");
            let want = if tops == Tops::V1_5 {
                TopsVersion::V1_5
            } else {
                TopsVersion::V1_6
            };
            assert_eq!(day.version, Some(want), "{label}");
            assert_eq!(
                day.stats.bytes, capture.summary.uncompressed_bytes,
                "{label}"
            );
            assert!(day.stats.end_of_messages, "{label}");
            assert_eq!(day.stats.build.breaks_applied, 1, "{label}");
            assert_eq!(day.stats.build.unmatched_breaks, 0, "{label}");
            assert_eq!(
                day.stats.breaks, 1,
                "{label}: the ZZZZ break is filtered before decoding"
            );
            assert_eq!(day.stats.build.fallback_bars, 3, "{label}");
            assert!(day.stats.heartbeats >= 1, "{label}");
            assert!(day.file.contains(&file));
        }
    }
}

#[test]
fn capture_reader_reports_format_and_capture_times() {
    let messages = scenario(0);
    for (container, want) in [
        (
            Container::Pcap {
                big_endian: false,
                nanosecond: false,
            },
            CaptureFormat::Pcap {
                big_endian: false,
                nanosecond: false,
            },
        ),
        (
            Container::Pcap {
                big_endian: true,
                nanosecond: true,
            },
            CaptureFormat::Pcap {
                big_endian: true,
                nanosecond: true,
            },
        ),
        (Container::default(), CaptureFormat::PcapNg),
    ] {
        let capture = build_capture(
            &messages,
            &CaptureOptions {
                container,
                ..CaptureOptions::default()
            },
        )
        .unwrap();
        let mut r = CaptureReader::new(Cursor::new(capture.bytes), "x").unwrap();
        assert!(r.is_gzip());
        assert_eq!(r.format(), want);
        let mut n = 0;
        let mut records = capture.summary.records.iter();
        while let Some(p) = r.next_packet().unwrap() {
            let rec = records.next().unwrap();
            assert_eq!(p.offset, rec.offset);
            // The writer stamps each record with the segment's send time; µs files lose the ns.
            let exact = matches!(
                want,
                CaptureFormat::Pcap {
                    nanosecond: true,
                    ..
                }
            );
            let expect = if exact {
                rec.send_time
            } else {
                rec.send_time / 1000 * 1000
            };
            assert_eq!(p.capture_ns, Some(expect));
            n += 1;
        }
        assert_eq!(n, capture.summary.records.len());
    }
}

#[test]
fn pcapng_second_section_switches_byte_order_and_resolution() {
    let messages = scenario(0);
    let options = CaptureOptions {
        container: Container::PcapNg {
            big_endian: false,
            tsresol: 6,
            simple_packets: false,
            extra_blocks: true,
        },
        gzip: false,
        ..CaptureOptions::default()
    };
    let capture = build_capture(&messages, &options).unwrap();
    let mut r = CaptureReader::new(Cursor::new(capture.bytes), "x").unwrap();
    let mut times = Vec::new();
    while let Some(p) = r.next_packet().unwrap() {
        times.push(p.capture_ns.unwrap());
    }
    let sends: Vec<i64> = capture
        .summary
        .records
        .iter()
        .map(|r| r.send_time)
        .collect();
    // Segments 0 and 1 in µs, the rest (new section, if_tsresol 9) exact.
    assert_eq!(times[..2], [sends[0] / 1000 * 1000, sends[1] / 1000 * 1000]);
    assert_eq!(times[2..], sends[2..]);
}

#[test]
fn duplicate_segments_are_skipped() {
    let messages = scenario(0);
    for segment in [1, 2, 3, 5, 8] {
        let options = CaptureOptions {
            faults: vec![Fault::DuplicateSegment { segment }],
            messages_per_segment: 3,
            ..CaptureOptions::default()
        };
        let capture = build_capture(&messages, &options).unwrap();
        let day = read_capture(
            Cursor::new(capture.bytes),
            name(Tops::V1_6, true),
            &requested(),
            &ReadOptions::default(),
        );
        assert!(day.is_clean(), "{:?} {:?}", day.damage, day.gaps);
        assert_eq!(day.stats.duplicate_segments, 1);
        assert_eq!(day.bars, expected_bars(0), "duplicate of segment {segment}");
    }
}

#[test]
fn symbol_subsets_and_large_symbol_sets() {
    let messages = scenario(0);
    let capture = build_capture(&messages, &CaptureOptions::default()).unwrap();
    let msft_only = read_capture(
        Cursor::new(capture.bytes.clone()),
        "f",
        &[sym("MSFT")],
        &ReadOptions::default(),
    );
    let want: Vec<_> = expected_bars(0)
        .into_iter()
        .filter(|b| b.symbol == sym("MSFT"))
        .collect();
    assert_eq!(msft_only.bars, want);
    // More than 16 symbols takes the sorted lookup; the order of the bars follows the
    // requested order.
    let mut many: Vec<_> = (0..30).map(|i| sym(&format!("X{i}"))).collect();
    many.insert(7, sym("MSFT"));
    many.push(sym("AAPL"));
    let day = read_capture(
        Cursor::new(capture.bytes),
        "f",
        &many,
        &ReadOptions::default(),
    );
    let mut want = expected_bars(0);
    want.sort_by_key(|b| (b.symbol != sym("MSFT"), b.ts));
    assert_eq!(day.bars, want);
}

#[test]
fn eligible_only_policy_drops_minutes_without_eligible_trades() {
    let capture = build_capture(&scenario(0), &CaptureOptions::default()).unwrap();
    let options = ReadOptions {
        price_policy: PricePolicy::EligibleOnly,
        ..ReadOptions::default()
    };
    let day = read_capture(Cursor::new(capture.bytes), "f", &requested(), &options);
    // Dropped: AAPL 08:00 (Form T), AAPL 09:33 (odd lots), MSFT 16:05 (Form T).
    let dropped = [
        ("AAPL", common::et(8, 0, 0, 0, 0)),
        ("AAPL", common::et(9, 33, 0, 0, 0)),
        ("MSFT", common::et(16, 5, 0, 0, 0)),
    ];
    let want: Vec<_> = expected_bars(0)
        .into_iter()
        .filter(|b| {
            !dropped
                .iter()
                .any(|(s, t)| b.symbol == sym(s) && b.ts.nanos() == *t)
        })
        .collect();
    assert_eq!(day.bars, want);
    assert_eq!(day.stats.build.minutes_without_eligible_trade, 3);
    assert_eq!(day.stats.build.volume_without_bar, 150 + 12 + 100);
}

#[test]
fn a_break_after_the_window_is_reported_not_applied() {
    let capture = build_capture(&scenario(0), &CaptureOptions::default()).unwrap();
    let options = ReadOptions {
        break_window: Some(Duration::from_mins(1)),
        ..ReadOptions::default()
    };
    let day = read_capture(Cursor::new(capture.bytes), "f", &requested(), &options);
    assert_eq!(day.stats.build.unmatched_breaks, 1);
    assert_eq!(day.stats.build.breaks_applied, 0);
    let minute = day
        .bars
        .iter()
        .find(|b| b.ts.nanos() == common::et(9, 31, 0, 0, 0) && b.symbol == sym("AAPL"))
        .unwrap();
    assert_eq!(minute.volume, 400, "the broken trade stays in");
    // Every other bar is unchanged, and few trades were held at once.
    assert_eq!(day.bars.len(), expected_bars(0).len());
    // Without a window all 15 trades of AAPL and MSFT are held at the end.
    assert!(
        day.stats.build.peak_held_trades < 15,
        "{}",
        day.stats.build.peak_held_trades
    );
}

#[test]
fn version_from_the_header_then_the_file_name() {
    let messages = scenario(0);
    // An unknown protocol id without a file-name hint is refused, naming the id.
    let options = CaptureOptions {
        protocol_id: Some(0x8004),
        ..CaptureOptions::default()
    };
    let capture = build_capture(&messages, &options).unwrap();
    let day = read_capture(
        Cursor::new(capture.bytes.clone()),
        "feed.pcap.gz",
        &requested(),
        &ReadOptions::default(),
    );
    let err = day.damage.unwrap();
    assert!(matches!(err, ReadError::Unsupported { .. }), "{err}");
    assert!(
        err.to_string().contains("0x8004") && err.to_string().contains("feed.pcap.gz"),
        "{err}"
    );
    // With the file name's hint, it is read as that version.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("20240315_IEXTP1_TOPS1.5.pcap.gz");
    std::fs::write(&path, &capture.bytes).unwrap();
    let day = read_day(&path, &requested(), &ReadOptions::default()).unwrap();
    assert!(day.damage.is_none(), "{:?}", day.damage);
    assert_eq!(day.version, Some(TopsVersion::V1_5));
    assert_eq!(day.bars, expected_bars(0));
    // A gunzipped file with a misleading name is still read (content decides).
    let plain = build_capture(
        &messages,
        &CaptureOptions {
            gzip: false,
            ..CaptureOptions::default()
        },
    )
    .unwrap();
    let path = dir.path().join("20240315_IEXTP1_TOPS1.6.pcap.gz");
    std::fs::write(&path, &plain.bytes).unwrap();
    let day = read_day(&path, &requested(), &ReadOptions::default()).unwrap();
    assert_eq!(day.bars, expected_bars(0));
}
