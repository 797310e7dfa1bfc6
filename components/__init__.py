"""KFP components, one module per stage. Each is thin: unpack artifacts, call one function of
`dpo_titles.stages`, record Metrics. The logic lives in the library."""
