-- model.sql: the demo's model (included by setup.sql), deployed as
-- version 1 of "demo" and activated.
--
-- Rules: a transaction alerts when the points of the rules that fire
-- reach 1 (the threshold is 0.99 so that sums such as 0.7 + 0.2 + 0.1,
-- which are a hair under 1 in floating point, count as 1).  Each pattern
-- needs several pieces of evidence, and no rule that fires often on
-- legitimate traffic carries much: rules add up across patterns, so a
-- large part of one pattern plus the small parts of others must stay
-- below 1.  Rule names start with the pattern they look for;
-- demo/summary.sql attributes alerts by them: ct_ card testing,
-- ato_ account takeover, it_ impossible travel, as_ amount spike,
-- mc_ merchant collusion.  The points were tuned on the traffic of
-- demo/evaluate.sh (make demo-eval) for seeds 7 and 2 at two times of
-- day, and checked on seed 11.
--
-- card testing: a tiny amount (below any legitimate ticket) alone, or an
--   amount of at most 2.00 on a card whose payments of the last minutes
--   were all that small, from a device without a session, at a third shop
--   within ten minutes.
-- account takeover: the paying device went through four kinds of
--   clickstream events within the hour (failed logins, login, password
--   change, new payee, page views); with three kinds, other evidence must
--   add up: the fraudster's distance (it_ rules) or an unusual ticket
--   (as_ rules).
-- impossible travel: faster than 900 km/h since the card's last payment,
--   and far from where the card usually pays: its latitude or longitude
--   off the average by 2% (away) and 20% (far), or by ten standard
--   deviations (off_route), in either direction.
-- amount spike: 2, 6, 12 and 20 times the customer's average ticket, many
--   standard deviations above it, 4 and 8 times the shop's average; a
--   first payment of the day counts against the shop alone.
-- merchant collusion: tickets of 300 and 600 or more at a merchant whose
--   average ticket over the hour is 120 or more, together with a ticket
--   unusual for the customer (as_ rules): a legitimate customer's large
--   ticket at such a merchant is in line with their own.
SELECT fraudstream.deploy_model('demo', '{
  "type": "rules", "threshold": 0.99,
  "rules": [
    {"name": "ct_tiny_amount",      "feature": "card_amount",        "op": "<",  "value": 1,    "points": 1},
    {"name": "ct_small_amount",     "feature": "card_amount",        "op": "<=", "value": 2,    "points": 0.3},
    {"name": "ct_small_burst",      "feature": "card_max_amount_5m", "op": "<=", "value": 2,    "points": 0.25},
    {"name": "ct_no_session",       "feature": "click_dev_count_1h", "op": "<=", "value": 0,    "points": 0.35},
    {"name": "ct_many_shops",       "feature": "card_merchants_10m", "op": ">=", "value": 3,    "points": 0.1},

    {"name": "ato_device_steps",    "feature": "click_dev_types_1h", "op": ">=", "value": 4,    "points": 0.65},
    {"name": "ato_login_steps",     "feature": "click_dev_types_1h", "op": ">=", "value": 3,    "points": 0.4},

    {"name": "it_speed",            "feature": "card_speed_1h",      "op": ">",  "value": 900,  "points": 0.55},
    {"name": "it_away_south",       "feature": "card_lat_ratio_1d",  "op": "<",  "value": 0.98, "points": 0.15},
    {"name": "it_away_north",       "feature": "card_lat_ratio_1d",  "op": ">",  "value": 1.02, "points": 0.15},
    {"name": "it_away_east",        "feature": "card_lon_ratio_1d",  "op": "<",  "value": 0.98, "points": 0.15},
    {"name": "it_away_west",        "feature": "card_lon_ratio_1d",  "op": ">",  "value": 1.02, "points": 0.15},
    {"name": "it_far_south",        "feature": "card_lat_ratio_1d",  "op": "<",  "value": 0.8,  "points": 0.25},
    {"name": "it_far_north",        "feature": "card_lat_ratio_1d",  "op": ">",  "value": 1.2,  "points": 0.25},
    {"name": "it_far_east",         "feature": "card_lon_ratio_1d",  "op": "<",  "value": 0.8,  "points": 0.25},
    {"name": "it_far_west",         "feature": "card_lon_ratio_1d",  "op": ">",  "value": 1.2,  "points": 0.25},
    {"name": "it_off_route_south",  "feature": "card_lat_z_1d",      "op": "<",  "value": -10,  "points": 0.15},
    {"name": "it_off_route_north",  "feature": "card_lat_z_1d",      "op": ">",  "value": 10,   "points": 0.15},
    {"name": "it_off_route_east",   "feature": "card_lon_z_1d",      "op": "<",  "value": -10,  "points": 0.15},
    {"name": "it_off_route_west",   "feature": "card_lon_z_1d",      "op": ">",  "value": 10,   "points": 0.15},

    {"name": "as_ratio_2",          "feature": "acct_ratio_1d",      "op": ">=", "value": 2,    "points": 0.05},
    {"name": "as_ratio_6",          "feature": "acct_ratio_1d",      "op": ">=", "value": 6,    "points": 0.2},
    {"name": "as_ratio_12",         "feature": "acct_ratio_1d",      "op": ">=", "value": 12,   "points": 0.7},
    {"name": "as_ratio_20",         "feature": "acct_ratio_1d",      "op": ">=", "value": 20,   "points": 0.4},
    {"name": "as_zscore_10",        "feature": "acct_z_1d",          "op": ">=", "value": 10,   "points": 0.05},
    {"name": "as_zscore_20",        "feature": "acct_z_1d",          "op": ">=", "value": 20,   "points": 0.05},
    {"name": "as_shop_ratio_4",     "feature": "merch_ratio_1h",     "op": ">=", "value": 4,    "points": 0.25},
    {"name": "as_shop_ratio_8",     "feature": "merch_ratio_1h",     "op": ">=", "value": 8,    "points": 0.1},
    {"name": "as_first_payment",    "feature": "acct_count_1d",      "op": "<=", "value": 1,    "points": 0.3},

    {"name": "mc_merchant_avg",     "feature": "merch_avg_1h",       "op": ">=", "value": 120,  "points": 0.3},
    {"name": "mc_high_ticket",      "feature": "card_amount",        "op": ">=", "value": 300,  "points": 0.4},
    {"name": "mc_very_high_ticket", "feature": "card_amount",        "op": ">=", "value": 600,  "points": 0.15}
  ]}');
SELECT fraudstream.activate_model('demo', 1);
