-- model.sql: the demo's model (included by setup.sql), deployed as
-- version 1 of "demo" and activated.
--
-- Rules with threshold 1: a transaction alerts when the points of the
-- rules that fire reach 1.  A pattern that needs two conditions splits
-- the point between two rules unevenly, so that a large part of one
-- pattern plus a small part of another stays below 1 (rules add up
-- across patterns).  Rule names start with the pattern they look for;
-- demo/summary.sql attributes alerts by them: ct_ card testing,
-- ato_ account takeover, it_ impossible travel, as_ amount spike,
-- mc_ merchant collusion.
SELECT fraudstream.deploy_model('demo', '{
  "type": "rules", "threshold": 1,
  "rules": [
    {"name": "ct_tiny_amount",   "feature": "card_amount",        "op": "<",  "value": 1,    "points": 1},
    {"name": "ct_small_burst",   "feature": "card_max_amount_2m", "op": "<=", "value": 2,    "points": 0.95},
    {"name": "ct_repeat",        "feature": "card_count_2m",      "op": ">=", "value": 2,    "points": 0.05},
    {"name": "it_speed",         "feature": "card_speed_1h",      "op": ">",  "value": 900,  "points": 0.75},
    {"name": "it_far_south",     "feature": "card_lat_ratio_1d",  "op": "<",  "value": 0.9,  "points": 0.25},
    {"name": "it_far_north",     "feature": "card_lat_ratio_1d",  "op": ">",  "value": 1.1,  "points": 0.25},
    {"name": "it_far_east",      "feature": "card_lon_ratio_1d",  "op": "<",  "value": 0.9,  "points": 0.25},
    {"name": "it_far_west",      "feature": "card_lon_ratio_1d",  "op": ">",  "value": 1.1,  "points": 0.25},
    {"name": "as_ratio",         "feature": "acct_ratio_1d",      "op": ">=", "value": 10,   "points": 0.8},
    {"name": "as_zscore",        "feature": "acct_z_1d",          "op": ">=", "value": 10,   "points": 0.2},
    {"name": "mc_high_ticket",   "feature": "card_amount",        "op": ">=", "value": 300,  "points": 0.3},
    {"name": "mc_merchant_avg",  "feature": "merch_avg_1h",       "op": ">=", "value": 120,  "points": 0.7},
    {"name": "ato_device_steps", "feature": "click_dev_types_1h", "op": ">=", "value": 4,    "points": 1}
  ]}');
SELECT fraudstream.activate_model('demo', 1);
