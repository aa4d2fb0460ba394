//! Splitting a scan into tasks: one per leaf partition, and ctid page ranges
//! inside big leaves, so that several connections sharing one snapshot read
//! disjoint parts of the table.

use crate::pg::catalog::Leaf;

/// Leaves smaller than this many pages (8 KiB each) are read by one task.
pub const MIN_PAGES_PER_TASK: u64 = 4096;

/// The smallest of the pieces a big leaf's last ranges are cut into (2 MiB: about 28,000
/// rentals, a few ms of one connection's stream).
pub const TAIL_PAGES: u64 = 256;

/// One COPY: a leaf, optionally restricted to pages [from, to).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    pub relation: String,
    pub only: bool,
    /// Page range; `to` None means "to the end".
    pub pages: Option<(u64, Option<u64>)>,
}

/// Plans tasks for `leaves` so that `threads` workers stay busy: about four
/// tasks per worker over the total size, ranges of at least MIN_PAGES_PER_TASK,
/// except for each split leaf's last pieces (halving, down to TAIL_PAGES).
/// `split` is false when the server lacks TID range scans (before PG 14).
pub fn plan(leaves: &[Leaf], threads: u64, split: bool) -> Vec<Task> {
    let total: u64 = leaves.iter().filter_map(|l| l.pages).sum();
    let per_task = (total / (threads.max(1) * 4)).max(MIN_PAGES_PER_TASK);
    let mut tasks = Vec::new();
    for leaf in leaves {
        match leaf.pages {
            Some(p) if split && threads > 1 && p > per_task + per_task / 2 => {
                let mut from = 0;
                while from < p {
                    let left = p - from;
                    // The last two ranges' worth is cut into halving pieces, so that the
                    // connections run out of work within a small piece of each other (with
                    // equal ranges, one connection read the last alone for up to a range's
                    // time: 0.13 s of 2.9 on 10M rentals).
                    let size = if left > 2 * per_task {
                        per_task
                    } else {
                        (left / 2).max(TAIL_PAGES)
                    };
                    let to = from + size;
                    // The last range is open-ended: it also covers pages added since we measured.
                    let last = left < 2 * TAIL_PAGES;
                    tasks.push(Task {
                        relation: leaf.qualified.clone(),
                        only: leaf.only,
                        pages: Some((from, if last { None } else { Some(to) })),
                    });
                    if last {
                        break;
                    }
                    from = to;
                }
            }
            _ => tasks.push(Task {
                relation: leaf.qualified.clone(),
                only: leaf.only,
                pages: None,
            }),
        }
    }
    // Biggest first, so that the long tasks do not start last.
    tasks.sort_by_key(|t| std::cmp::Reverse(task_pages(t, leaves)));
    tasks
}

fn task_pages(t: &Task, leaves: &[Leaf]) -> u64 {
    match t.pages {
        Some((from, Some(to))) => to - from,
        Some((from, None)) => leaves
            .iter()
            .find(|l| l.qualified == t.relation)
            .and_then(|l| l.pages)
            .unwrap_or(0)
            .saturating_sub(from),
        None => leaves
            .iter()
            .find(|l| l.qualified == t.relation)
            .and_then(|l| l.pages)
            .unwrap_or(u64::MAX / 2),
    }
}

impl Task {
    /// The COPY statement for this task.
    pub fn copy_sql(&self, select_list: &str, filter: Option<&str>) -> String {
        let mut conds = Vec::new();
        if let Some((from, to)) = self.pages {
            conds.push(format!("ctid >= '({from},0)'::tid"));
            if let Some(to) = to {
                conds.push(format!("ctid < '({to},0)'::tid"));
            }
        }
        if let Some(f) = filter {
            conds.push(format!("({f})"));
        }
        let only = if self.only { "ONLY " } else { "" };
        let mut sql = format!("COPY (SELECT {select_list} FROM {only}{}", self.relation);
        if !conds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conds.join(" AND "));
        }
        sql.push_str(") TO STDOUT (FORMAT binary)");
        sql
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(name: &str, pages: Option<u64>) -> Leaf {
        Leaf {
            qualified: name.into(),
            pages,
            only: false,
        }
    }

    #[test]
    fn small_tables_are_one_task() {
        let t = plan(&[leaf("t", Some(100))], 4, true);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].pages, None);
        assert_eq!(
            t[0].copy_sql("\"a\"", None),
            "COPY (SELECT \"a\" FROM t) TO STDOUT (FORMAT binary)"
        );
    }

    #[test]
    fn big_tables_split_into_disjoint_ranges() {
        let t = plan(&[leaf("t", Some(100_000))], 2, true);
        assert!(t.len() >= 8, "{t:?}");
        let mut ranges: Vec<(u64, Option<u64>)> = t.iter().map(|t| t.pages.unwrap()).collect();
        ranges.sort();
        assert_eq!(ranges[0].0, 0);
        for w in ranges.windows(2) {
            assert_eq!(w[0].1, Some(w[1].0), "ranges must touch");
        }
        assert_eq!(ranges.last().unwrap().1, None);
        // The end is cut into halving pieces, which come last (biggest first).
        let sizes: Vec<u64> = t
            .iter()
            .map(|t| t.pages.unwrap().1.unwrap_or(100_000) - t.pages.unwrap().0)
            .collect();
        assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
        assert!(*sizes.last().unwrap() < 2 * TAIL_PAGES, "{sizes:?}");
        let sql = t[0].copy_sql("*", Some("x > 1"));
        assert!(sql.contains("ctid >= '(") && sql.contains("AND (x > 1)"), "{sql}");
    }

    #[test]
    fn partitions_are_tasks_and_no_split_without_tid_range_scans() {
        let leaves = vec![leaf("p1", Some(10)), leaf("p2", Some(20)), leaf("p3", Some(30))];
        assert_eq!(plan(&leaves, 4, true).len(), 3);
        assert_eq!(plan(&[leaf("t", Some(100_000))], 4, false).len(), 1);
        assert_eq!(plan(&[leaf("t", Some(100_000))], 1, true).len(), 1);
    }
}
