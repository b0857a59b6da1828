//! Is a count rising steadily? Least squares over a series of readings, as the detectors that
//! need time (`fd-leak`, `leak-per-event`) ask it.
//!
//! A leak is growth that keeps going: a straight line fits the readings well, most steps go
//! up, and the most recent part of the series still rises. A pool that grows once and stays
//! flat fails the last test; connection churn that goes up and down fails the first two.

/// A straight line fitted to points by least squares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LineFit {
    /// Units per second.
    pub slope: f64,
    /// The value at `x = 0`.
    pub intercept: f64,
    /// Coefficient of determination, 0 (no fit) to 1 (a perfect line); 0 for flat data.
    pub r_squared: f64,
}

/// Fits `y = slope · x + intercept` to `points` (x in seconds). `None` for fewer than two
/// points or when every x is the same.
pub fn fit_line(points: &[(f64, f64)]) -> Option<LineFit> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for &(x, y) in points {
        sxx += (x - mean_x) * (x - mean_x);
        sxy += (x - mean_x) * (y - mean_y);
        syy += (y - mean_y) * (y - mean_y);
    }
    if sxx <= f64::EPSILON {
        return None;
    }
    let slope = sxy / sxx;
    let r_squared = if syy <= f64::EPSILON {
        0.0
    } else {
        (sxy * sxy / (sxx * syy)).clamp(0.0, 1.0)
    };
    Some(LineFit {
        slope,
        intercept: mean_y - slope * mean_x,
        r_squared,
    })
}

/// What a series of counts says about growth.
#[derive(Clone, Debug, PartialEq)]
pub struct Growth {
    /// The fit over the whole series.
    pub fit: LineFit,
    /// The fit over its most recent third.
    pub recent: Option<LineFit>,
    /// Share of steps that went up, of the steps that changed anything.
    pub rising_steps: f64,
    /// Last value minus first.
    pub net: f64,
    /// Seconds from the first point to the last.
    pub span_secs: f64,
    /// Index of the point the steady rise starts at (after the last drop).
    pub rising_since: usize,
}

/// Thresholds for [`Growth::is_leak`].
#[derive(Clone, Debug)]
pub struct LeakRule {
    /// Readings needed at least.
    pub min_points: usize,
    /// Seconds the series must span at least.
    pub min_span_secs: f64,
    /// Net growth needed at least (descriptors).
    pub min_net: f64,
    /// The line must fit at least this well (R²).
    pub min_r_squared: f64,
    /// At least this share of changing steps must go up.
    pub min_rising_steps: f64,
}

impl Default for LeakRule {
    fn default() -> Self {
        LeakRule {
            min_points: 6,
            min_span_secs: 5.0,
            min_net: 20.0,
            min_r_squared: 0.8,
            min_rising_steps: 0.8,
        }
    }
}

/// Measures the growth of `points` (x in seconds, sorted). `None` below two points.
pub fn growth(points: &[(f64, f64)]) -> Option<Growth> {
    let fit = fit_line(points)?;
    let recent_start = points.len() - (points.len() / 3).max(2).min(points.len());
    let recent = fit_line(&points[recent_start..]);
    let (mut up, mut down) = (0usize, 0usize);
    let mut rising_since = 0;
    for i in 1..points.len() {
        if points[i].1 > points[i - 1].1 {
            up += 1;
        } else if points[i].1 < points[i - 1].1 {
            down += 1;
            rising_since = i;
        }
    }
    let changed = up + down;
    Some(Growth {
        fit,
        recent,
        rising_steps: if changed == 0 {
            0.0
        } else {
            up as f64 / changed as f64
        },
        net: points[points.len() - 1].1 - points[0].1,
        span_secs: points[points.len() - 1].0 - points[0].0,
        rising_since,
    })
}

impl Growth {
    /// True when the series is a leak by `rule`: long enough, grown enough, a good line,
    /// mostly rising steps, and still rising at the end.
    pub fn is_leak(&self, points: usize, rule: &LeakRule) -> bool {
        let still_rising = self.recent.is_some_and(|r| {
            // The recent part must rise at a rate comparable to the whole (not flat after a
            // single jump): at least a quarter of the overall slope.
            r.slope > 0.0 && r.slope >= self.fit.slope * 0.25
        });
        points >= rule.min_points
            && self.span_secs >= rule.min_span_secs
            && self.net >= rule.min_net
            && self.fit.slope > 0.0
            && self.fit.r_squared >= rule.min_r_squared
            && self.rising_steps >= rule.min_rising_steps
            && still_rising
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[f64], step: f64) -> Vec<(f64, f64)> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as f64 * step, *v))
            .collect()
    }

    #[test]
    fn a_steady_leak_is_one() {
        let points: Vec<(f64, f64)> = (0..20)
            .map(|i| (i as f64 * 10.0, 100.0 + 5.0 * i as f64))
            .collect();
        let g = growth(&points).unwrap();
        assert!((g.fit.slope - 0.5).abs() < 1e-9);
        assert!(g.fit.r_squared > 0.999);
        assert!(g.is_leak(points.len(), &LeakRule::default()));
    }

    #[test]
    fn a_leak_with_noise_is_one() {
        let values: Vec<f64> = (0..30)
            .map(|i| 1000.0 + 3.0 * i as f64 + if i % 4 == 0 { -2.0 } else { 1.0 })
            .collect();
        let points = series(&values, 10.0);
        assert!(growth(&points)
            .unwrap()
            .is_leak(points.len(), &LeakRule::default()));
    }

    #[test]
    fn growing_once_then_flat_is_not() {
        let mut values = vec![100.0; 3];
        values.extend(vec![5000.0; 17]);
        let points = series(&values, 10.0);
        let g = growth(&points).unwrap();
        assert!(!g.is_leak(points.len(), &LeakRule::default()), "{g:?}");
    }

    #[test]
    fn up_and_down_churn_is_not() {
        let values: Vec<f64> = (0..30)
            .map(|i| 200.0 + if i % 2 == 0 { 40.0 } else { -40.0 } + i as f64)
            .collect();
        let points = series(&values, 10.0);
        let g = growth(&points).unwrap();
        assert!(!g.is_leak(points.len(), &LeakRule::default()), "{g:?}");
    }

    #[test]
    fn too_short_or_too_small_is_not() {
        let points = series(&[10.0, 11.0, 12.0, 13.0], 10.0);
        assert!(!growth(&points).unwrap().is_leak(4, &LeakRule::default()));
        let points = series(&[10.0, 10.5, 11.0, 11.5, 12.0, 12.5, 13.0], 10.0);
        assert!(!growth(&points).unwrap().is_leak(7, &LeakRule::default()));
        assert!(growth(&[(0.0, 1.0)]).is_none());
        assert!(fit_line(&[(1.0, 1.0), (1.0, 2.0)]).is_none());
    }

    #[test]
    fn the_rise_starts_after_the_last_drop() {
        let points = series(&[50.0, 10.0, 20.0, 30.0, 40.0, 50.0], 1.0);
        assert_eq!(growth(&points).unwrap().rising_since, 1);
    }
}
