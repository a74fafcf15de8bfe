//! Renderers for plans, lint results and trace reports: table, JSON, JUnit, Mermaid, Prometheus.
