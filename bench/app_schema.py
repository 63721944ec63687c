"""The `app` dataset's schema and the SQL that fills it (bench/app_dataset.py runs it and sizes it).

Per unit (one unit = 100 orders), the scaled tables get PER_UNIT rows; the small tables get FIXED_ROWS once. Every
text value is a slice of the run's corpus (the `%(corpus)s` parameter, `%(span)s` bytes long less a margin); a
reference is a random id among the rows loaded so far (`{hi}` is the number of units loaded when the statement
ends). Keys, foreign keys and indexes come last (CONSTRAINTS), as a dump's restore builds them.
"""

from __future__ import annotations

SCHEMA = """
CREATE TABLE plans (id int, name text, monthly_price numeric(10,2), features jsonb, active bool);
CREATE TABLE countries (code text, name text, region text, eu_member bool);
CREATE TABLE currencies (code text, name text, decimals int);
CREATE TABLE categories (id int, parent_id int, name text, description text);
CREATE TABLE warehouses (id int, name text, country_code text, opened_on date);
CREATE TABLE carriers (id int, name text, tracking_url text);
CREATE TABLE tags (id int, name text);
CREATE TABLE roles (id int, name text, permissions jsonb);
CREATE TABLE feature_flags (id int, key text, enabled bool, rules jsonb, updated_at timestamptz);
CREATE TABLE email_templates (id int, name text, subject text, body text, updated_at timestamptz);
CREATE TABLE coupons (id int, code text, plan_id int, percent_off numeric(5,2), expires_at timestamptz);
CREATE TABLE accounts (id bigint, name text, plan_id int, country_code text, created_at timestamptz, is_trial bool);
CREATE TABLE users (id bigint, account_id bigint, email text, full_name text, created_at timestamptz,
                    is_active bool, settings jsonb);
CREATE TABLE user_roles (user_id bigint, role_id int);
CREATE TABLE products (id bigint, category_id int, sku text, name text, description text, price numeric(12,2),
                       attributes jsonb, active bool);
CREATE TABLE product_tags (product_id bigint, tag_id int);
CREATE TABLE orders (id bigint, account_id bigint, user_id bigint, status text, currency text, total numeric(12,2),
                     placed_at timestamptz, shipping_address text, notes text, paid bool);
CREATE TABLE order_items (id bigint, order_id bigint, product_id bigint, quantity int, unit_price numeric(12,2),
                          discount numeric(5,2), description text);
CREATE TABLE payments (id bigint, order_id bigint, amount numeric(12,2), method text, reference text,
                       paid_at timestamptz, succeeded bool);
CREATE TABLE shipments (id bigint, order_id bigint, carrier_id int, warehouse_id int, tracking_code text,
                        shipped_at timestamptz, delivered bool);
CREATE TABLE events (id bigint, user_id bigint, kind text, occurred_at timestamptz, properties jsonb, processed bool);
CREATE TABLE audit_log (id bigint, actor_id bigint, action text, entity text, entity_id bigint, at timestamptz,
                        payload jsonb);
CREATE TABLE comments (id bigint, user_id bigint, order_id bigint, body text, created_at timestamptz, edited bool);
CREATE TABLE sessions (id bigint, user_id bigint, started_at timestamptz, ip text, user_agent text, active bool);
CREATE TABLE product_reviews (id bigint, product_id bigint, user_id bigint, rating int, title text, body text,
                              created_at timestamptz);
"""

# Per unit: rows of each scaled table.
PER_UNIT = {"accounts": 2, "users": 10, "user_roles": 10, "products": 2, "product_tags": 6, "orders": 100,
            "order_items": 300, "payments": 100, "shipments": 80, "events": 400, "audit_log": 150, "comments": 50,
            "sessions": 60, "product_reviews": 20}
FIXED_ROWS = {"plans": 12, "countries": 60, "currencies": 20, "categories": 80, "warehouses": 15, "carriers": 10,
              "tags": 150, "roles": 8, "feature_flags": 40, "email_templates": 30, "coupons": 500}


def _pick(*values: str) -> str:
    return f"(ARRAY[{', '.join(repr(v) for v in values)}])[1 + floor(random() * {len(values)})::int]"


def _ref(table: str) -> str:
    """A random existing id of a scaled table (up to the end of the units loaded so far)."""
    return f"(1 + floor(random() * {{hi}} * {PER_UNIT[table]}))::bigint"


def _fixed_ref(table: str) -> str:
    return f"(1 + floor(random() * {FIXED_ROWS[table]}))::int"


W = "encode(substring(%(corpus)s::bytea FROM 1 + floor(random() * %(span)s)::int FOR {n}), 'escape')"
TS = "timestamptz '2024-01-01 00:00:00+00' + random() * interval '900 days'"
MONEY = "round((random() * {n})::numeric, 2)"
STATUS = _pick("pending", "paid", "shipped", "delivered", "cancelled", "refunded")
KIND = _pick("page_view", "click", "signup", "login", "logout", "search", "add_to_cart", "checkout", "purchase")


def w(n: int) -> str:
    """A text value: n bytes of the corpus from a random place."""
    return W.replace("{n}", str(n))


FIXED = {
    "plans": f"SELECT i, 'plan ' || {w(10)}, {MONEY.replace('{n}', '200')}, "
             f"jsonb_build_object('seats', i * 5, 'support', {_pick('email', 'chat', 'phone')}, 'notes', {w(40)}), "
             "mod(i, 4) <> 0",
    "countries": f"SELECT 'C' || lpad(i::text, 2, '0'), {w(14)}, {_pick('EMEA', 'AMER', 'APAC')}, random() < 0.4",
    "currencies": f"SELECT 'X' || lpad(i::text, 2, '0'), {w(16)}, 2",
    "categories": f"SELECT i, CASE WHEN i > 10 THEN 1 + mod(i, 10) END, {w(12)}, {w(120)}",
    "warehouses": f"SELECT i, 'warehouse ' || {w(10)}, 'C' || lpad((1 + mod(i, 60))::text, 2, '0'), "
                  "date '2015-01-01' + i * 97",
    "carriers": f"SELECT i, {w(12)}, 'https://track.example.com/' || i || '/{{code}}'",
    "tags": f"SELECT i, {w(9)}",
    "roles": f"SELECT i, {w(8)}, jsonb_build_object('read', true, 'write', i > 3, 'admin', i = 8, 'scope', {w(20)})",
    "feature_flags": f"SELECT i, 'flag_' || i, random() < 0.5, jsonb_build_object('percent', (random() * 100)::int, "
                     f"'segment', {w(16)}), {TS}",
    "email_templates": f"SELECT i, 'template_' || i, {w(50)}, {w(1500)}, {TS}",
    "coupons": f"SELECT i, upper(md5(i::text)), {_fixed_ref('plans')}, {MONEY.replace('{n}', '50')}, {TS}",
}

SCALED = {
    "accounts": f"SELECT i, {w(24)}, {_fixed_ref('plans')}, 'C' || lpad((1 + floor(random() * 60))::text, 2, '0'), "
                f"{TS}, random() < 0.1",
    "users": f"SELECT i, 1 + (i - 1) / 5, 'user' || i || '@' || {_pick('example.com', 'mail.test', 'corp.test')}, "
             f"{w(22)}, {TS}, random() < 0.9, jsonb_build_object('theme', {_pick('light', 'dark')}, "
             f"'locale', {_pick('en', 'de', 'fr', 'es')}, 'newsletter', random() < 0.3)",
    "user_roles": f"SELECT i, {_fixed_ref('roles')}",
    "products": f"SELECT i, {_fixed_ref('categories')}, 'SKU-' || lpad(i::text, 9, '0'), {w(30)}, {w(400)}, "
                f"{MONEY.replace('{n}', '500')}, jsonb_build_object('color', {_pick('red', 'blue', 'green', 'black')}, "
                "'weight_grams', (random() * 5000)::int, 'material', " + w(12) + "), random() < 0.95",
    "product_tags": f"SELECT 1 + (i - 1) / 3, {_fixed_ref('tags')}",
    "orders": f"SELECT i, {_ref('accounts')}, {_ref('users')}, {STATUS}, 'X' || lpad((1 + floor(random() * 20))::text, 2, "
              f"'0'), {MONEY.replace('{n}', '2000')}, {TS}, {w(60)}, CASE WHEN random() < 0.3 THEN {w(80)} END, "
              "random() < 0.8",
    "order_items": f"SELECT i, 1 + (i - 1) / 3, {_ref('products')}, 1 + floor(random() * 5)::int, "
                   f"{MONEY.replace('{n}', '300')}, CASE WHEN random() < 0.2 THEN 10.00 ELSE 0 END, {w(50)}",
    "payments": f"SELECT i, i, {MONEY.replace('{n}', '2000')}, {_pick('card', 'paypal', 'invoice', 'transfer')}, "
                f"'pay_' || md5(i::text), {TS}, random() < 0.97",
    "shipments": f"SELECT i, i, {_fixed_ref('carriers')}, {_fixed_ref('warehouses')}, 'TRK' || lpad(i::text, 12, '0'), "
                 f"{TS}, random() < 0.7",
    "events": f"SELECT i, {_ref('users')}, {KIND}, {TS}, jsonb_build_object('path', '/' || {w(18)}, "
              f"'referrer', {_pick('google', 'direct', 'newsletter', 'partner')}, 'session', {_ref('sessions')}, "
              f"'duration_ms', (random() * 30000)::int, 'query', {w(30)}), random() < 0.9",
    "audit_log": f"SELECT i, {_ref('users')}, {_pick('create', 'update', 'delete', 'login', 'export')}, "
                 f"{_pick('order', 'user', 'product', 'payment', 'account')}, {_ref('orders')}, {TS}, "
                 f"jsonb_build_object('before', jsonb_build_object('status', {STATUS}, 'note', {w(60)}), "
                 f"'after', jsonb_build_object('status', {STATUS}, 'note', {w(60)}), "
                 "'ip', '10.' || (random() * 255)::int || '.' || (random() * 255)::int || '.' || "
                 "(random() * 255)::int, 'request_id', md5(i::text))",
    "comments": f"SELECT i, {_ref('users')}, {_ref('orders')}, {w(240)}, {TS}, random() < 0.1",
    "sessions": "SELECT i, " + _ref("users") + ", " + TS + ", '10.' || (random() * 255)::int || '.' || "
                "(random() * 255)::int || '.' || (random() * 255)::int, 'Mozilla/5.0 (' || "
                + _pick("X11; Linux x86_64", "Windows NT 10.0; Win64; x64", "Macintosh; Intel Mac OS X 14_1") +
                " || ') ' || " + _pick("Firefox/131.0", "Chrome/130.0 Safari/537.36", "Safari/605.1.15") + ", random() < 0.2",
    "product_reviews": f"SELECT i, {_ref('products')}, {_ref('users')}, 1 + floor(random() * 5)::int, {w(40)}, "
                       f"{w(300)}, {TS}",
}

CONSTRAINTS = """
ALTER TABLE plans ADD PRIMARY KEY (id);
ALTER TABLE countries ADD PRIMARY KEY (code);
ALTER TABLE currencies ADD PRIMARY KEY (code);
ALTER TABLE categories ADD PRIMARY KEY (id);
ALTER TABLE categories ADD FOREIGN KEY (parent_id) REFERENCES categories;
ALTER TABLE warehouses ADD PRIMARY KEY (id), ADD FOREIGN KEY (country_code) REFERENCES countries;
ALTER TABLE carriers ADD PRIMARY KEY (id);
ALTER TABLE tags ADD PRIMARY KEY (id);
ALTER TABLE roles ADD PRIMARY KEY (id);
ALTER TABLE feature_flags ADD PRIMARY KEY (id);
ALTER TABLE email_templates ADD PRIMARY KEY (id);
ALTER TABLE coupons ADD PRIMARY KEY (id), ADD FOREIGN KEY (plan_id) REFERENCES plans;
ALTER TABLE accounts ADD PRIMARY KEY (id), ADD FOREIGN KEY (plan_id) REFERENCES plans,
    ADD FOREIGN KEY (country_code) REFERENCES countries;
ALTER TABLE users ADD PRIMARY KEY (id), ADD FOREIGN KEY (account_id) REFERENCES accounts;
CREATE UNIQUE INDEX users_email_key ON users (email);
ALTER TABLE user_roles ADD FOREIGN KEY (user_id) REFERENCES users, ADD FOREIGN KEY (role_id) REFERENCES roles;
ALTER TABLE products ADD PRIMARY KEY (id), ADD FOREIGN KEY (category_id) REFERENCES categories;
CREATE UNIQUE INDEX products_sku_key ON products (sku);
ALTER TABLE product_tags ADD FOREIGN KEY (product_id) REFERENCES products, ADD FOREIGN KEY (tag_id) REFERENCES tags;
ALTER TABLE orders ADD PRIMARY KEY (id), ADD FOREIGN KEY (account_id) REFERENCES accounts,
    ADD FOREIGN KEY (user_id) REFERENCES users, ADD FOREIGN KEY (currency) REFERENCES currencies;
CREATE INDEX orders_placed_at_idx ON orders (placed_at);
ALTER TABLE order_items ADD PRIMARY KEY (id), ADD FOREIGN KEY (order_id) REFERENCES orders,
    ADD FOREIGN KEY (product_id) REFERENCES products;
CREATE INDEX order_items_order_id_idx ON order_items (order_id);
ALTER TABLE payments ADD PRIMARY KEY (id), ADD FOREIGN KEY (order_id) REFERENCES orders;
ALTER TABLE shipments ADD PRIMARY KEY (id), ADD FOREIGN KEY (order_id) REFERENCES orders,
    ADD FOREIGN KEY (carrier_id) REFERENCES carriers, ADD FOREIGN KEY (warehouse_id) REFERENCES warehouses;
ALTER TABLE events ADD PRIMARY KEY (id), ADD FOREIGN KEY (user_id) REFERENCES users;
CREATE INDEX events_user_id_occurred_at_idx ON events (user_id, occurred_at);
CREATE INDEX events_kind_idx ON events (kind);
ALTER TABLE audit_log ADD PRIMARY KEY (id), ADD FOREIGN KEY (actor_id) REFERENCES users;
CREATE INDEX audit_log_entity_idx ON audit_log (entity, entity_id);
ALTER TABLE comments ADD PRIMARY KEY (id), ADD FOREIGN KEY (user_id) REFERENCES users,
    ADD FOREIGN KEY (order_id) REFERENCES orders;
ALTER TABLE sessions ADD PRIMARY KEY (id), ADD FOREIGN KEY (user_id) REFERENCES users;
ALTER TABLE product_reviews ADD PRIMARY KEY (id), ADD FOREIGN KEY (product_id) REFERENCES products,
    ADD FOREIGN KEY (user_id) REFERENCES users;
CREATE INDEX product_reviews_product_id_idx ON product_reviews (product_id);
"""
