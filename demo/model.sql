-- model.sql: the demo's model (included by setup.sql), deployed as
-- version 1 of "demo" and activated.  Rules, threshold 1: a pattern
-- alerts when its rules' points reach 1.  Rule names start with the
-- pattern they look for (demo/summary.sql attributes alerts by them):
-- ct_ card testing, ato_ account takeover, it_ impossible travel,
-- as_ amount spike, mc_ merchant collusion.
SELECT fraudstream.deploy_model('demo', '{
  "type": "rules", "threshold": 1,
  "rules": [
    {"name": "ct_tiny_amount",    "feature": "card_amount",         "op": "<",  "value": 1,   "points": 1},
    {"name": "ct_small_burst",    "feature": "card_max_amount_10m", "op": "<=", "value": 2,   "points": 0.5},
    {"name": "ct_repeat",         "feature": "card_count_10m",      "op": ">=", "value": 2,   "points": 0.5},
    {"name": "it_speed",          "feature": "card_speed_1h",       "op": ">",  "value": 900, "points": 1},
    {"name": "as_ratio",          "feature": "acct_ratio_1d",       "op": ">=", "value": 8,   "points": 1}
  ]}');
SELECT fraudstream.activate_model('demo', 1);
