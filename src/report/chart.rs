//! Pictures in the terminal: sparklines with their scale (`0 |▁▂▄█▅▂| 36`) and
//! horizontal bars, in Unicode blocks on a UTF-8 display and an ASCII ramp otherwise.
//! Pure text; the caller decides where it goes.

/// Eight heights of a sparkline column, and of a bar's last part.
const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
const ASCII: [char; 8] = ['_', '.', ',', ':', '-', '=', '+', '#'];

/// One column per value, scaled from 0 to the largest value; a value the series has not
/// (a quantile of an empty bucket) is a space.
pub fn sparkline(values: &[Option<f64>], unicode: bool) -> String {
    let ramp = if unicode { BLOCKS } else { ASCII };
    let top = values.iter().flatten().copied().fold(0.0_f64, f64::max);
    values
        .iter()
        .map(|value| match value {
            None => ' ',
            Some(value) if top <= 0.0 || *value <= 0.0 => ramp[0],
            Some(value) => {
                let step = ((value / top) * 7.0).round() as usize;
                ramp[step.min(7)]
            }
        })
        .collect()
}

/// A horizontal bar of `value` against `top` in `width` columns; any value above 0 shows
/// at least a sliver.
pub fn bar(value: f64, top: f64, width: usize, unicode: bool) -> String {
    if top <= 0.0 || value <= 0.0 || width == 0 {
        return String::new();
    }
    let eighths = ((value / top) * (width * 8) as f64).round().max(1.0) as usize;
    let (full, part) = (eighths / 8, eighths % 8);
    let mut bar = String::new();
    if unicode {
        bar.extend(std::iter::repeat_n('█', full));
        if part > 0 {
            bar.push(BLOCKS[part - 1]);
        }
    } else {
        bar.extend(std::iter::repeat_n('#', full));
        if part >= 4 || full == 0 {
            bar.push('#');
        }
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_to_the_largest_value_and_show_gaps() {
        assert_eq!(
            sparkline(&[Some(0.0), Some(5.0), None, Some(10.0)], true),
            "▁▅ █"
        );
        assert_eq!(
            sparkline(&[Some(0.0), Some(5.0), None, Some(10.0)], false),
            "_- #"
        );
        assert_eq!(sparkline(&[Some(0.0), Some(0.0)], true), "▁▁");
    }

    #[test]
    fn bars_fill_their_width_at_the_top_and_never_vanish() {
        assert_eq!(bar(10.0, 10.0, 4, true), "████");
        assert_eq!(bar(10.0, 10.0, 4, false), "####");
        assert_eq!(bar(0.001, 10.0, 4, true), "▁");
        assert_eq!(bar(0.0, 10.0, 4, true), "");
    }
}
