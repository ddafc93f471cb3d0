-- features.sql: the demo's features (included by setup.sql).
-- Card: bursts of tiny payments (card testing), impossible travel.
SELECT fraudstream.create_feature('card_count_10m', 'txn', 'card_id', 'count', '10 minutes', time_column => 'ts');
SELECT fraudstream.create_feature('card_max_amount_10m', 'txn', 'card_id', 'max', '10 minutes', 'amount', time_column => 'ts');
SELECT fraudstream.create_feature('card_amount', 'txn', 'card_id', 'max', '1 millisecond', 'amount', time_column => 'ts');
SELECT fraudstream.create_feature('card_merchants_10m', 'txn', 'card_id', 'distinct', '10 minutes', 'merchant_id', time_column => 'ts');
SELECT fraudstream.create_feature('card_speed_1h', 'txn', 'card_id', 'geo_velocity', '1 hour', time_column => 'ts', lat_column => 'lat', lon_column => 'lon');
-- Account: the amount against the customer's own tickets.
SELECT fraudstream.create_feature('acct_ratio_1d', 'txn', 'account_id', 'ratio_to_avg', '1 day', 'amount', time_column => 'ts');
SELECT fraudstream.create_feature('acct_count_1d', 'txn', 'account_id', 'count', '1 day', time_column => 'ts');
-- Merchant: bursts of high tickets against its usual traffic.
SELECT fraudstream.create_feature('merch_count_10m', 'txn', 'merchant_id', 'count', '10 minutes', time_column => 'ts');
SELECT fraudstream.create_feature('merch_sum_10m', 'txn', 'merchant_id', 'sum', '10 minutes', 'amount', time_column => 'ts');
SELECT fraudstream.create_feature('merch_count_1h', 'txn', 'merchant_id', 'count', '1 hour', time_column => 'ts');
-- Clickstream (probes): the account's devices and networks, and what a
-- device did (failed logins, password changes, new payees).
SELECT fraudstream.create_feature('click_acct_devices_1h', 'clicks', 'account_id', 'distinct', '1 hour', 'device_id');
SELECT fraudstream.create_feature('click_acct_ips_1h', 'clicks', 'account_id', 'distinct', '1 hour', 'ip');
SELECT fraudstream.create_feature('click_acct_types_1h', 'clicks', 'account_id', 'distinct', '1 hour', 'type');
SELECT fraudstream.create_feature('click_dev_count_1h', 'clicks', 'device_id', 'count', '1 hour');
SELECT fraudstream.create_feature('click_dev_types_1h', 'clicks', 'device_id', 'distinct', '1 hour', 'type');
