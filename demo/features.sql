-- features.sql: the demo's features (included by setup.sql).  Each one
-- serves a rule of model.sql; bench/gen/README.md says what reveals each
-- fraud pattern.

-- Card: the row's own amount (a window of 1 ms holds only the row), bursts
-- of tiny payments (card testing), speed between payments and distance
-- from the card's usual latitude and longitude (impossible travel).
SELECT fraudstream.create_feature('card_amount', 'txn', 'card_id', 'max', '1 millisecond', 'amount', time_column => 'ts');
SELECT fraudstream.create_feature('card_count_2m', 'txn', 'card_id', 'count', '2 minutes', time_column => 'ts');
SELECT fraudstream.create_feature('card_max_amount_2m', 'txn', 'card_id', 'max', '2 minutes', 'amount', time_column => 'ts');
SELECT fraudstream.create_feature('card_speed_1h', 'txn', 'card_id', 'geo_velocity', '1 hour', time_column => 'ts', lat_column => 'lat', lon_column => 'lon');
SELECT fraudstream.create_feature('card_lat_ratio_1d', 'txn', 'card_id', 'ratio_to_avg', '1 day', 'lat', time_column => 'ts');
SELECT fraudstream.create_feature('card_lon_ratio_1d', 'txn', 'card_id', 'ratio_to_avg', '1 day', 'lon', time_column => 'ts');

-- Account: the amount against the customer's own tickets (amount spikes).
SELECT fraudstream.create_feature('acct_ratio_1d', 'txn', 'account_id', 'ratio_to_avg', '1 day', 'amount', time_column => 'ts');
SELECT fraudstream.create_feature('acct_z_1d', 'txn', 'account_id', 'zscore', '1 day', 'amount', time_column => 'ts');

-- Merchant: its average ticket over the hour (colluding shells take
-- high tickets where legitimate ones are small).
SELECT fraudstream.create_feature('merch_avg_1h', 'txn', 'merchant_id', 'avg', '1 hour', 'amount', time_column => 'ts');

-- Clickstream ring (a probe for each transaction, by device_id): the kinds
-- of events the paying device produced in the last hour.  A takeover's
-- device fails to log in, logs in, changes the password or adds a payee
-- and browses: four kinds or more, which legitimate devices almost never
-- show.
SELECT fraudstream.create_feature('click_dev_types_1h', 'clicks', 'device_id', 'distinct', '1 hour', 'type');
