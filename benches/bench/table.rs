//! The printed tables: one row per figure, side by side with the baseline, and the number
//! formats they use.

/// One line of a result table.
pub(super) struct Row {
    pub(super) figure: String,
    pub(super) ours: String,
    pub(super) base: String,
    /// Ours relative to the baseline.
    pub(super) vs: String,
    /// The value the target is about.
    pub(super) checked: String,
    pub(super) target: String,
    pub(super) pass: Option<bool>,
}

pub(super) fn row(
    figure: impl Into<String>,
    ours: impl Into<String>,
    base: impl Into<String>,
) -> Row {
    Row {
        figure: figure.into(),
        ours: ours.into(),
        base: base.into(),
        vs: String::new(),
        checked: String::new(),
        target: String::new(),
        pass: None,
    }
}

impl Row {
    pub(super) fn vs(mut self, ours: f64, base: f64) -> Row {
        if base > 0.0 && ours.is_finite() && base.is_finite() {
            self.vs = format!("{}×", sig(ours / base));
        }
        self
    }

    pub(super) fn check(
        mut self,
        checked: impl Into<String>,
        target: impl Into<String>,
        pass: bool,
    ) -> Row {
        self.checked = checked.into();
        self.target = target.into();
        self.pass = Some(pass);
        self
    }

    pub(super) fn info(mut self, checked: impl Into<String>) -> Row {
        self.checked = checked.into();
        self
    }

    pub(super) fn result(&self) -> &'static str {
        match self.pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "info",
        }
    }
}

pub(super) struct Section {
    pub(super) case: &'static str,
    pub(super) title: String,
    pub(super) rows: Vec<Row>,
    pub(super) notes: Vec<String>,
}

/// Three significant digits, without exponent for everyday magnitudes.
pub(super) fn sig(x: f64) -> String {
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else if a >= 0.01 {
        format!("{x:.3}")
    } else {
        format!("{x:.2e}")
    }
}

pub(super) fn secs(d: f64) -> String {
    format!("{} s", sig(d))
}

pub(super) fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

pub(super) fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i]
}

pub(super) fn median(values: &[f64]) -> f64 {
    percentile(values, 0.5)
}

/// `100 MiB`, `1 GiB`.
pub(super) fn size_label(mib: u64) -> String {
    if mib >= 1024 && mib.is_multiple_of(1024) {
        format!("{} GiB", mib / 1024)
    } else {
        format!("{mib} MiB")
    }
}

/// Prints one section's table and notes to standard output.
pub(super) fn print_section(s: &Section) {
    println!("\n== {} ==", s.title);
    let header = [
        "figure", "ours", "baseline", "vs base", "checked", "target", "result",
    ];
    let cells: Vec<[String; 7]> = s
        .rows
        .iter()
        .map(|r| {
            [
                r.figure.clone(),
                r.ours.clone(),
                r.base.clone(),
                r.vs.clone(),
                r.checked.clone(),
                r.target.clone(),
                r.result().to_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for c in &cells {
        for (w, cell) in widths.iter_mut().zip(c) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cols: &[String]| {
        let mut out = String::new();
        for (i, (cell, w)) in cols.iter().zip(widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            let pad = w - cell.chars().count();
            out.push_str(cell);
            if i + 1 < cols.len() {
                out.push_str(&" ".repeat(pad));
            }
        }
        println!("{}", out.trim_end());
    };
    line(&header.map(str::to_owned));
    for c in &cells {
        line(c);
    }
    for note in &s.notes {
        println!("  · {note}");
    }
}
