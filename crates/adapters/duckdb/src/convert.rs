//! DuckDB results (Arrow batches) to the port's [`Cell`]s.
//!
//! Integers become `Int` (a `HUGEINT`, which DuckDB hands over as `DECIMAL(38,0)`, or a
//! `UBIGINT` too large for `i64` becomes exact `Text`); floats and decimals `Float`; booleans
//! `Bool`; strings `Text`; `TIMESTAMP` and `TIMESTAMPTZ` of any unit `Timestamp` (UTC; a
//! naive timestamp is read as UTC); everything else (`DATE`, `TIME`, `INTERVAL`, lists,
//! structs, blobs, …) readable `Text` such as `2024-03-01` or `[1, 2]`.

use duckdb::arrow::array::{Array, AsArray};
use duckdb::arrow::datatypes::{
    DataType, Decimal32Type, Decimal64Type, Decimal128Type, Decimal256Type, Float16Type,
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use duckdb::arrow::error::ArrowError;
use duckdb::arrow::util::display::{ArrayFormatter, FormatOptions};
use marketpipe_domain::Timestamp;
use marketpipe_ports::query::Cell;

/// The first `rows` cells of a column. Fails only for a type Arrow cannot render at all.
pub(crate) fn column_cells(array: &dyn Array, rows: usize) -> Result<Vec<Cell>, ArrowError> {
    let rows = rows.min(array.len());
    // Out-of-range values (a timestamp beyond chrono's years) render as an error text
    // instead of failing the query.
    let options = FormatOptions::default().with_display_error(true);
    let mut formatter: Option<ArrayFormatter<'_>> = None;
    let mut out = Vec::with_capacity(rows);
    for row in 0..rows {
        if array.is_null(row) {
            out.push(Cell::Null);
            continue;
        }
        let cell = if let Some(cell) = typed_cell(array, row) {
            cell
        } else {
            let f = if let Some(f) = formatter.take() {
                f
            } else {
                ArrayFormatter::try_new(array, &options)?
            };
            let text = f.value(row).to_string();
            formatter = Some(f);
            Cell::Text(text)
        };
        out.push(cell);
    }
    Ok(out)
}

/// The cell of a non-null value of a type with its own `Cell` variant; `None` for the types
/// rendered as text.
fn typed_cell(array: &dyn Array, row: usize) -> Option<Cell> {
    let cell = match array.data_type() {
        DataType::Null => Cell::Null,
        DataType::Boolean => Cell::Bool(array.as_boolean().value(row)),
        DataType::Int8 => Cell::Int(array.as_primitive::<Int8Type>().value(row).into()),
        DataType::Int16 => Cell::Int(array.as_primitive::<Int16Type>().value(row).into()),
        DataType::Int32 => Cell::Int(array.as_primitive::<Int32Type>().value(row).into()),
        DataType::Int64 => Cell::Int(array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => Cell::Int(array.as_primitive::<UInt8Type>().value(row).into()),
        DataType::UInt16 => Cell::Int(array.as_primitive::<UInt16Type>().value(row).into()),
        DataType::UInt32 => Cell::Int(array.as_primitive::<UInt32Type>().value(row).into()),
        DataType::UInt64 => {
            let v = array.as_primitive::<UInt64Type>().value(row);
            i64::try_from(v).map_or_else(|_| Cell::Text(v.to_string()), Cell::Int)
        }
        DataType::Float16 => Cell::Float(array.as_primitive::<Float16Type>().value(row).into()),
        DataType::Float32 => Cell::Float(array.as_primitive::<Float32Type>().value(row).into()),
        DataType::Float64 => Cell::Float(array.as_primitive::<Float64Type>().value(row)),
        DataType::Decimal32(_, scale) => decimal(
            &array.as_primitive::<Decimal32Type>().value_as_string(row),
            *scale,
        ),
        DataType::Decimal64(_, scale) => decimal(
            &array.as_primitive::<Decimal64Type>().value_as_string(row),
            *scale,
        ),
        DataType::Decimal128(_, scale) => decimal(
            &array.as_primitive::<Decimal128Type>().value_as_string(row),
            *scale,
        ),
        DataType::Decimal256(_, scale) => decimal(
            &array.as_primitive::<Decimal256Type>().value_as_string(row),
            *scale,
        ),
        DataType::Utf8 => Cell::Text(array.as_string::<i32>().value(row).to_owned()),
        DataType::LargeUtf8 => Cell::Text(array.as_string::<i64>().value(row).to_owned()),
        DataType::Utf8View => Cell::Text(array.as_string_view().value(row).to_owned()),
        DataType::Timestamp(unit, _) => {
            let (value, nanos_per_unit) = match unit {
                TimeUnit::Second => (
                    array.as_primitive::<TimestampSecondType>().value(row),
                    1_000_000_000,
                ),
                TimeUnit::Millisecond => (
                    array.as_primitive::<TimestampMillisecondType>().value(row),
                    1_000_000,
                ),
                TimeUnit::Microsecond => (
                    array.as_primitive::<TimestampMicrosecondType>().value(row),
                    1_000,
                ),
                TimeUnit::Nanosecond => (
                    array.as_primitive::<TimestampNanosecondType>().value(row),
                    1,
                ),
            };
            // Beyond ±292 years of 1970 nanoseconds overflow: such instants render as text.
            Cell::Timestamp(Timestamp::from_nanos(value.checked_mul(nanos_per_unit)?))
        }
        _ => return None,
    };
    Some(cell)
}

/// A decimal from its exact rendering: an integer (scale 0, as DuckDB's `HUGEINT` arrives)
/// that fits `i64` is an `Int`, one that does not is exact `Text`; any other is a `Float`.
fn decimal(text: &str, scale: i8) -> Cell {
    if scale == 0 {
        return text
            .parse::<i64>()
            .map_or_else(|_| Cell::Text(text.to_owned()), Cell::Int);
    }
    text.parse::<f64>()
        .map_or_else(|_| Cell::Text(text.to_owned()), Cell::Float)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use duckdb::arrow::array::{
        ArrayRef, BooleanArray, Date32Array, Decimal128Array, Int64Array, StringArray,
        TimestampMicrosecondArray, TimestampSecondArray, UInt64Array,
    };

    use super::*;

    fn cells(array: &ArrayRef) -> Vec<Cell> {
        column_cells(array.as_ref(), usize::MAX).unwrap()
    }

    #[test]
    fn scalar_types() {
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None]));
        assert_eq!(cells(&ints), [Cell::Int(1), Cell::Null]);
        let big: ArrayRef = Arc::new(UInt64Array::from(vec![5, u64::MAX]));
        assert_eq!(
            cells(&big),
            [Cell::Int(5), Cell::Text("18446744073709551615".into())]
        );
        let bools: ArrayRef = Arc::new(BooleanArray::from(vec![true]));
        assert_eq!(cells(&bools), [Cell::Bool(true)]);
        let text: ArrayRef = Arc::new(StringArray::from(vec!["AAPL"]));
        assert_eq!(cells(&text), [Cell::Text("AAPL".into())]);
    }

    #[test]
    fn decimals_and_hugeints() {
        let huge: ArrayRef = Arc::new(
            Decimal128Array::from(vec![42_i128, i128::from(i64::MAX) + 1])
                .with_precision_and_scale(38, 0)
                .unwrap(),
        );
        assert_eq!(
            cells(&huge),
            [Cell::Int(42), Cell::Text("9223372036854775808".into())]
        );
        let dec: ArrayRef = Arc::new(
            Decimal128Array::from(vec![150_i128])
                .with_precision_and_scale(10, 2)
                .unwrap(),
        );
        assert_eq!(cells(&dec), [Cell::Float(1.5)]);
    }

    #[test]
    fn timestamps_and_dates() {
        let micros: ArrayRef = Arc::new(
            TimestampMicrosecondArray::from(vec![1_704_205_800_000_000]).with_timezone("UTC"),
        );
        assert_eq!(
            cells(&micros),
            [Cell::Timestamp(Timestamp::from_nanos(
                1_704_205_800_000_000_000
            ))]
        );
        // Beyond i64 nanoseconds (year 2262): text.
        let later: ArrayRef = Arc::new(TimestampSecondArray::from(vec![16_725_225_600]));
        assert_eq!(cells(&later), [Cell::Text("2500-01-01T00:00:00".into())]);
        let far: ArrayRef = Arc::new(TimestampSecondArray::from(vec![i64::MAX / 10]));
        assert!(matches!(cells(&far)[0], Cell::Text(_)));
        let dates: ArrayRef = Arc::new(Date32Array::from(vec![19_783]));
        assert_eq!(cells(&dates), [Cell::Text("2024-03-01".into())]);
    }

    #[test]
    fn rows_are_capped() {
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
        assert_eq!(column_cells(ints.as_ref(), 2).unwrap().len(), 2);
    }
}
