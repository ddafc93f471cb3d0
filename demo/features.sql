-- features.sql: the demo's features (included by setup.sql).  Each one
-- serves rules of model.sql; bench/gen/README.md says what reveals each
-- fraud pattern.

-- Card: the row's own amount (a window of 1 ms holds only the row), the
-- largest amount and the shops of the last minutes (card testing), speed
-- between payments and how far the payment lies from the card's usual
-- latitude and longitude, as a ratio to their average and in standard
-- deviations (impossible travel, and the distant fraudster of a takeover).
SELECT fraudstream.create_feature('card_amount', 'txn', 'card_id', 'max', '1 millisecond', 'amount', time_column => 'ts');
SELECT fraudstream.create_feature('card_max_amount_5m', 'txn', 'card_id', 'max', '5 minutes', 'amount', time_column => 'ts');
SELECT fraudstream.create_feature('card_merchants_10m', 'txn', 'card_id', 'distinct', '10 minutes', 'merchant_id', time_column => 'ts');
SELECT fraudstream.create_feature('card_speed_1h', 'txn', 'card_id', 'geo_velocity', '1 hour', time_column => 'ts', lat_column => 'lat', lon_column => 'lon');
SELECT fraudstream.create_feature('card_lat_ratio_1d', 'txn', 'card_id', 'ratio_to_avg', '1 day', 'lat', time_column => 'ts');
SELECT fraudstream.create_feature('card_lon_ratio_1d', 'txn', 'card_id', 'ratio_to_avg', '1 day', 'lon', time_column => 'ts');
SELECT fraudstream.create_feature('card_lat_z_1d', 'txn', 'card_id', 'zscore', '1 day', 'lat', time_column => 'ts');
SELECT fraudstream.create_feature('card_lon_z_1d', 'txn', 'card_id', 'zscore', '1 day', 'lon', time_column => 'ts');

-- Account: the amount against the customer's own tickets (amount spikes,
-- and the resellable goods of a takeover), and whether the customer has
-- paid before today (a first payment has no tickets to compare with).
SELECT fraudstream.create_feature('acct_ratio_1d', 'txn', 'account_id', 'ratio_to_avg', '1 day', 'amount', time_column => 'ts');
SELECT fraudstream.create_feature('acct_z_1d', 'txn', 'account_id', 'zscore', '1 day', 'amount', time_column => 'ts');
SELECT fraudstream.create_feature('acct_count_1d', 'txn', 'account_id', 'count', '1 day', time_column => 'ts');

-- Merchant: its average ticket over the hour (colluding shells take high
-- tickets where legitimate ones are small), and the amount against it (a
-- spike stands out at the customer's usual shop even without history).
SELECT fraudstream.create_feature('merch_avg_1h', 'txn', 'merchant_id', 'avg', '1 hour', 'amount', time_column => 'ts');
SELECT fraudstream.create_feature('merch_ratio_1h', 'txn', 'merchant_id', 'ratio_to_avg', '1 hour', 'amount', time_column => 'ts');

-- Clickstream ring (a probe for each transaction, by device_id): what the
-- paying device did in the last hour.  A takeover's device fails to log
-- in, logs in, often changes the password or adds a payee, and browses:
-- three kinds of events or more, four in most takeovers, which legitimate
-- devices almost never show.  A card tester pays from a device that had no
-- session at all, where a customer's online purchase mostly follows a login
-- or page views.
SELECT fraudstream.create_feature('click_dev_types_1h', 'clicks', 'device_id', 'distinct', '1 hour', 'type');
SELECT fraudstream.create_feature('click_dev_count_1h', 'clicks', 'device_id', 'count', '1 hour');
