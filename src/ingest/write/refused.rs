//! Rows the server refuses: which one COPY names, and how a batch is narrowed down to
//! the refused row when it names none, so that one bad row never costs its batch.

use crate::ingest::batch::Batch;

/// The tuple a COPY into `table` failed at, 0-based, from the error context
/// "COPY log_events, line 7, column metadata: ...". Other frames (triggers, functions,
/// a distributed table's shards) number their own lines and are not trusted.
pub(super) fn refused_row(error: &tokio_postgres::Error, table: &str) -> Option<usize> {
    row_in_context(error.as_db_error()?.where_()?, table)
}

fn row_in_context(context: &str, table: &str) -> Option<usize> {
    let prefix = format!("COPY {table}, line ");
    let line = context
        .lines()
        .find_map(|frame| frame.strip_prefix(prefix.as_str()))?;
    let digits: String = line.chars().take_while(char::is_ascii_digit).collect();
    digits.parse::<usize>().ok()?.checked_sub(1)
}

/// After the server refused one of the batch's rows: rejects the row it named (or the
/// batch's only row) with `reason`, or splits the batch in two and returns the second
/// half, to be tried on its own. Either way what is left is tried again.
pub(super) fn isolate(batch: &mut Batch, named: Option<usize>, reason: String) -> Option<Batch> {
    match named.filter(|&row| row < batch.rows.len()) {
        Some(row) => {
            batch.reject_row(row, reason);
            None
        }
        None if batch.rows.len() == 1 => {
            batch.reject_row(0, reason);
            None
        }
        None => {
            let middle = batch.rows[batch.rows.len() / 2];
            Some(batch.split_at(batch.start_offset + middle.raw_start as u64))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::batch::tests::batch_of;

    #[test]
    fn the_row_copy_names_is_read_from_its_own_frame_only() {
        assert_eq!(
            row_in_context(
                "COPY log_events, line 7, column metadata: \"x\"",
                "log_events"
            ),
            Some(6)
        );
        let trigger = "PL/pgSQL function refuse() line 3 at RAISE\nCOPY log_events, line 12";
        assert_eq!(row_in_context(trigger, "log_events"), Some(11));
        assert_eq!(
            row_in_context("COPY logctl_staging_42, line 2", "log_events"),
            None
        );
        assert_eq!(
            row_in_context("COPY logctl_staging_42, line 2", "logctl_staging_42"),
            Some(1)
        );
        assert_eq!(
            row_in_context("PL/pgSQL function f() line 3", "log_events"),
            None
        );
        assert_eq!(
            row_in_context("COPY log_events, line 0", "log_events"),
            None
        );
    }

    /// Plays a server that refuses every row whose line holds "bad", naming it or not,
    /// the way `write_batch` plays it: every good row ends up committed once, every bad
    /// one rejected once with its own line number and offset, and the committed parts'
    /// ranges tile the batch's.
    fn narrow_down(names_the_row: bool) {
        let lines = [
            "good 1", "bad 2", "good 3", "good 4", "good 5", "bad 6", "bad 7", "good 8",
        ];
        let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
        let original = batch_of(&text, 100, 10);
        let (start, end) = (original.start_offset, original.end_offset);
        let mut work = vec![original];
        let mut committed = Vec::new();
        while let Some(mut batch) = work.pop() {
            let bad = batch
                .rows
                .iter()
                .position(|row| batch.raw[row.raw_start..row.raw_end].starts_with(b"bad"));
            match bad {
                None => committed.push(batch),
                Some(index) => {
                    let named = names_the_row.then_some(index);
                    if let Some(tail) = isolate(&mut batch, named, "refused".into()) {
                        work.push(tail);
                    }
                    work.push(batch);
                }
            }
        }
        committed.sort_by_key(|batch| batch.start_offset);
        let rows: Vec<u64> = committed
            .iter()
            .flat_map(|batch| batch.rows.iter().map(|row| row.line))
            .collect();
        assert_eq!(rows, [10, 12, 13, 14, 17]);
        let mut rejects: Vec<(u64, u64, String)> = committed
            .iter()
            .flat_map(|batch| &batch.rejects)
            .map(|reject| {
                (
                    reject.line,
                    reject.offset,
                    String::from_utf8(reject.text.clone()).unwrap(),
                )
            })
            .collect();
        rejects.sort();
        let offset_of = |index: usize| 100 + text.find(lines[index]).unwrap() as u64;
        assert_eq!(
            rejects,
            [
                (11, offset_of(1), "bad 2".to_string()),
                (15, offset_of(5), "bad 6".to_string()),
                (16, offset_of(6), "bad 7".to_string()),
            ]
        );
        assert_eq!(committed.first().unwrap().start_offset, start);
        assert_eq!(committed.last().unwrap().end_offset, end);
        for pair in committed.windows(2) {
            assert_eq!(pair[0].end_offset, pair[1].start_offset);
            assert_eq!(pair[0].end_line, pair[1].start_line);
        }
        let accounted: u64 = committed.iter().map(Batch::line_count).sum();
        assert_eq!(accounted, lines.len() as u64);
    }

    #[test]
    fn a_refused_row_the_server_names_is_rejected_alone() {
        narrow_down(true);
    }

    #[test]
    fn a_refused_row_the_server_does_not_name_is_found_by_halving() {
        narrow_down(false);
    }
}
