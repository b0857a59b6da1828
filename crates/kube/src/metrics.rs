//! kube-apiserver's `/metrics` (Prometheus text exposition), reduced to what detectors cite.

use nodedoc_model::{ApiserverMetrics, StoredObjects};

/// The metric of the API server process's resident memory.
const RESIDENT: &str = "process_resident_memory_bytes";
/// Objects stored per resource: `apiserver_resource_objects{group,resource}` (Kubernetes ≥ 1.34)
/// and the older `apiserver_storage_objects{resource="replicasets.apps"}`.
const OBJECTS: [&str; 2] = ["apiserver_resource_objects", "apiserver_storage_objects"];
/// The resources worth keeping a count of.
const RESOURCES: [&str; 3] = ["replicasets.apps", "deployments.apps", "pods"];

/// Parses an exposition. The API server's is tens of thousands of lines of histograms: only
/// the lines of the metrics kept are handed to the parser (prometheus-parse, which reads the
/// label syntax and Go's float forms such as `1.3958643712e+10`).
pub(crate) fn parse(origin: &str, text: &str) -> ApiserverMetrics {
    let wanted = |name: &str| name == RESIDENT || OBJECTS.contains(&name);
    let lines = text.lines().filter(|line| {
        let body = line
            .strip_prefix("# TYPE ")
            .or_else(|| line.strip_prefix("# HELP "))
            .unwrap_or(line);
        let name = body
            .split(|c: char| c == '{' || c.is_whitespace())
            .next()
            .unwrap_or("");
        wanted(name)
    });
    let mut metrics = ApiserverMetrics {
        origin: origin.to_string(),
        ..ApiserverMetrics::default()
    };
    let Ok(scrape) = prometheus_parse::Scrape::parse(lines.map(|l| Ok(l.to_string()))) else {
        return metrics;
    };
    for sample in &scrape.samples {
        let value = match sample.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v)
            | prometheus_parse::Value::Counter(v) => v,
            _ => continue,
        };
        if !(value.is_finite() && value >= 0.0) {
            continue;
        }
        if sample.metric == RESIDENT {
            metrics.resident_memory_bytes = Some(value as u64);
            continue;
        }
        let resource = match (sample.labels.get("group"), sample.labels.get("resource")) {
            (Some(group), Some(resource)) if !group.is_empty() => format!("{resource}.{group}"),
            (_, Some(resource)) => resource.to_string(),
            _ => continue,
        };
        if !RESOURCES.contains(&resource.as_str()) {
            continue;
        }
        // The newer metric wins when both are served.
        let newer = sample.metric == OBJECTS[0];
        match metrics
            .stored_objects
            .iter_mut()
            .find(|s| s.resource == resource)
        {
            Some(known) if newer => known.count = value as u64,
            Some(_) => {}
            None => metrics.stored_objects.push(StoredObjects {
                resource,
                count: value as u64,
            }),
        }
    }
    metrics
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_memory_and_stored_replicasets_are_read() {
        let text = "\
# HELP apiserver_request_duration_seconds [STABLE] Response latency distribution.
# TYPE apiserver_request_duration_seconds histogram
apiserver_request_duration_seconds_bucket{component=\"apiserver\",le=\"0.005\"} 12
# HELP apiserver_storage_objects [STABLE] Number of stored objects at the time of last check split by kind.
# TYPE apiserver_storage_objects gauge
apiserver_storage_objects{resource=\"replicasets.apps\"} 50123
apiserver_storage_objects{resource=\"events\"} 77
# HELP apiserver_resource_objects [ALPHA] Number of stored objects.
# TYPE apiserver_resource_objects gauge
apiserver_resource_objects{group=\"apps\",resource=\"replicasets\"} 50124
apiserver_resource_objects{group=\"\",resource=\"pods\"} 310
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 1.3958643712e+10
";
        let m = parse("api:x/metrics", text);
        assert_eq!(m.resident_memory_bytes, Some(13_958_643_712));
        assert_eq!(m.stored("replicasets.apps"), Some(50124));
        assert_eq!(m.stored("pods"), Some(310));
        assert_eq!(m.stored("events"), None);
    }

    #[test]
    fn garbage_gives_nothing_not_an_error() {
        let m = parse("x", "process_resident_memory_bytes banana\n\u{0}\u{1}{{{");
        assert_eq!(m.resident_memory_bytes, None);
    }
}
