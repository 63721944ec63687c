"""The Chinook sample database (tests/fixtures/chinook, MIT licence): its schema and its vendored rows.

The names, keys and foreign keys are the Chinook Database's own PostgreSQL
script's: quoted PascalCase tables and columns, composite and self-referencing
keys. The rows are the public data set, unchanged, loaded with COPY.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import defaultdict
from pathlib import Path

import psycopg
from psycopg import sql

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "chinook" / "chinook.json.gz"
FIXTURE_SHA256 = "58e26e05ae22e8986f3863547c92e11c4ecd4dd7a2796c883c5712a14a1a065a"

SCHEMA = """
CREATE TABLE "Album" ("AlbumId" INT NOT NULL, "Title" VARCHAR(160) NOT NULL, "ArtistId" INT NOT NULL,
    CONSTRAINT "PK_Album" PRIMARY KEY ("AlbumId"));
CREATE TABLE "Artist" ("ArtistId" INT NOT NULL, "Name" VARCHAR(120), CONSTRAINT "PK_Artist" PRIMARY KEY ("ArtistId"));
CREATE TABLE "Customer" ("CustomerId" INT NOT NULL, "FirstName" VARCHAR(40) NOT NULL, "LastName" VARCHAR(20) NOT NULL,
    "Company" VARCHAR(80), "Address" VARCHAR(70), "City" VARCHAR(40), "State" VARCHAR(40), "Country" VARCHAR(40),
    "PostalCode" VARCHAR(10), "Phone" VARCHAR(24), "Fax" VARCHAR(24), "Email" VARCHAR(60) NOT NULL,
    "SupportRepId" INT, CONSTRAINT "PK_Customer" PRIMARY KEY ("CustomerId"));
CREATE TABLE "Employee" ("EmployeeId" INT NOT NULL, "LastName" VARCHAR(20) NOT NULL, "FirstName" VARCHAR(20) NOT NULL,
    "Title" VARCHAR(30), "ReportsTo" INT, "BirthDate" TIMESTAMP, "HireDate" TIMESTAMP, "Address" VARCHAR(70),
    "City" VARCHAR(40), "State" VARCHAR(40), "Country" VARCHAR(40), "PostalCode" VARCHAR(10), "Phone" VARCHAR(24),
    "Fax" VARCHAR(24), "Email" VARCHAR(60), CONSTRAINT "PK_Employee" PRIMARY KEY ("EmployeeId"));
CREATE TABLE "Genre" ("GenreId" INT NOT NULL, "Name" VARCHAR(120), CONSTRAINT "PK_Genre" PRIMARY KEY ("GenreId"));
CREATE TABLE "Invoice" ("InvoiceId" INT NOT NULL, "CustomerId" INT NOT NULL, "InvoiceDate" TIMESTAMP NOT NULL,
    "BillingAddress" VARCHAR(70), "BillingCity" VARCHAR(40), "BillingState" VARCHAR(40), "BillingCountry" VARCHAR(40),
    "BillingPostalCode" VARCHAR(10), "Total" NUMERIC(10,2) NOT NULL, CONSTRAINT "PK_Invoice" PRIMARY KEY ("InvoiceId"));
CREATE TABLE "InvoiceLine" ("InvoiceLineId" INT NOT NULL, "InvoiceId" INT NOT NULL, "TrackId" INT NOT NULL,
    "UnitPrice" NUMERIC(10,2) NOT NULL, "Quantity" INT NOT NULL, CONSTRAINT "PK_InvoiceLine" PRIMARY KEY ("InvoiceLineId"));
CREATE TABLE "MediaType" ("MediaTypeId" INT NOT NULL, "Name" VARCHAR(120),
    CONSTRAINT "PK_MediaType" PRIMARY KEY ("MediaTypeId"));
CREATE TABLE "Playlist" ("PlaylistId" INT NOT NULL, "Name" VARCHAR(120), CONSTRAINT "PK_Playlist" PRIMARY KEY ("PlaylistId"));
CREATE TABLE "PlaylistTrack" ("PlaylistId" INT NOT NULL, "TrackId" INT NOT NULL,
    CONSTRAINT "PK_PlaylistTrack" PRIMARY KEY ("PlaylistId", "TrackId"));
CREATE TABLE "Track" ("TrackId" INT NOT NULL, "Name" VARCHAR(200) NOT NULL, "AlbumId" INT, "MediaTypeId" INT NOT NULL,
    "GenreId" INT, "Composer" VARCHAR(220), "Milliseconds" INT NOT NULL, "Bytes" INT, "UnitPrice" NUMERIC(10,2) NOT NULL,
    CONSTRAINT "PK_Track" PRIMARY KEY ("TrackId"));
ALTER TABLE "Album" ADD CONSTRAINT "FK_AlbumArtistId" FOREIGN KEY ("ArtistId") REFERENCES "Artist" ("ArtistId");
ALTER TABLE "Customer" ADD CONSTRAINT "FK_CustomerSupportRepId" FOREIGN KEY ("SupportRepId")
    REFERENCES "Employee" ("EmployeeId");
ALTER TABLE "Employee" ADD CONSTRAINT "FK_EmployeeReportsTo" FOREIGN KEY ("ReportsTo") REFERENCES "Employee" ("EmployeeId");
ALTER TABLE "Invoice" ADD CONSTRAINT "FK_InvoiceCustomerId" FOREIGN KEY ("CustomerId") REFERENCES "Customer" ("CustomerId");
ALTER TABLE "InvoiceLine" ADD CONSTRAINT "FK_InvoiceLineInvoiceId" FOREIGN KEY ("InvoiceId")
    REFERENCES "Invoice" ("InvoiceId");
ALTER TABLE "InvoiceLine" ADD CONSTRAINT "FK_InvoiceLineTrackId" FOREIGN KEY ("TrackId") REFERENCES "Track" ("TrackId");
ALTER TABLE "PlaylistTrack" ADD CONSTRAINT "FK_PlaylistTrackPlaylistId" FOREIGN KEY ("PlaylistId")
    REFERENCES "Playlist" ("PlaylistId");
ALTER TABLE "PlaylistTrack" ADD CONSTRAINT "FK_PlaylistTrackTrackId" FOREIGN KEY ("TrackId") REFERENCES "Track" ("TrackId");
ALTER TABLE "Track" ADD CONSTRAINT "FK_TrackAlbumId" FOREIGN KEY ("AlbumId") REFERENCES "Album" ("AlbumId");
ALTER TABLE "Track" ADD CONSTRAINT "FK_TrackGenreId" FOREIGN KEY ("GenreId") REFERENCES "Genre" ("GenreId");
ALTER TABLE "Track" ADD CONSTRAINT "FK_TrackMediaTypeId" FOREIGN KEY ("MediaTypeId") REFERENCES "MediaType" ("MediaTypeId");
CREATE INDEX "IFK_AlbumArtistId" ON "Album" ("ArtistId");
CREATE INDEX "IFK_CustomerSupportRepId" ON "Customer" ("SupportRepId");
CREATE INDEX "IFK_EmployeeReportsTo" ON "Employee" ("ReportsTo");
CREATE INDEX "IFK_InvoiceCustomerId" ON "Invoice" ("CustomerId");
CREATE INDEX "IFK_InvoiceLineInvoiceId" ON "InvoiceLine" ("InvoiceId");
CREATE INDEX "IFK_InvoiceLineTrackId" ON "InvoiceLine" ("TrackId");
CREATE INDEX "IFK_PlaylistTrackTrackId" ON "PlaylistTrack" ("TrackId");
CREATE INDEX "IFK_TrackAlbumId" ON "Track" ("AlbumId");
CREATE INDEX "IFK_TrackGenreId" ON "Track" ("GenreId");
CREATE INDEX "IFK_TrackMediaTypeId" ON "Track" ("MediaTypeId");
"""

# The data set's model -> (table, its columns: "pk" or the data set's field name for each).
TABLES = {
    "chinook.artist": ("Artist", {"ArtistId": "pk", "Name": "name"}),
    "chinook.album": ("Album", {"AlbumId": "pk", "Title": "title", "ArtistId": "artist"}),
    "chinook.employee": ("Employee", {
        "EmployeeId": "pk", "LastName": "lastname", "FirstName": "firstname", "Title": "title",
        "ReportsTo": "reports_to", "BirthDate": "birthdate", "HireDate": "hiredate", "Address": "address",
        "City": "city", "State": "state", "Country": "country", "PostalCode": "postalcode", "Phone": "phone",
        "Fax": "fax", "Email": "email"}),
    "chinook.customer": ("Customer", {
        "CustomerId": "pk", "FirstName": "firstname", "LastName": "lastname", "Company": "company",
        "Address": "address", "City": "city", "State": "state", "Country": "country", "PostalCode": "postalcode",
        "Phone": "phone", "Fax": "fax", "Email": "email", "SupportRepId": "support_rep"}),
    "chinook.genre": ("Genre", {"GenreId": "pk", "Name": "name"}),
    "chinook.mediatype": ("MediaType", {"MediaTypeId": "pk", "Name": "name"}),
    "chinook.playlist": ("Playlist", {"PlaylistId": "pk", "Name": "name"}),
    "chinook.track": ("Track", {
        "TrackId": "pk", "Name": "name", "AlbumId": "album", "MediaTypeId": "mediatype", "GenreId": "genre",
        "Composer": "composer", "Milliseconds": "milliseconds", "Bytes": "bytes", "UnitPrice": "unit_price"}),
    "chinook.invoice": ("Invoice", {
        "InvoiceId": "pk", "CustomerId": "customer", "InvoiceDate": "invoicedate", "BillingAddress": "billingaddress",
        "BillingCity": "billingcity", "BillingState": "billingstate", "BillingCountry": "billingcountry",
        "BillingPostalCode": "billingpostalcode", "Total": "total"}),
    "chinook.invoiceline": ("InvoiceLine", {
        "InvoiceLineId": "pk", "InvoiceId": "invoice", "TrackId": "track", "UnitPrice": "unit_price",
        "Quantity": "quantity"}),
    "chinook.playlisttrack": ("PlaylistTrack", {"PlaylistId": "playlist", "TrackId": "track"}),
}


def rows() -> dict[str, list[dict]]:
    """The data set's records by model, once its checksum is the vendored one."""
    raw = FIXTURE.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == FIXTURE_SHA256, f"{FIXTURE.name} is not the vendored data set"
    by_model: dict[str, list[dict]] = defaultdict(list)
    for record in json.loads(gzip.decompress(raw)):
        by_model[record["model"]].append({"pk": record["pk"], **record["fields"]})
    return by_model


def load(url: str) -> dict[str, int]:
    """Create Chinook in the database at `url` and load its rows; the row count of each table."""
    counts = {}
    records = rows()
    with psycopg.connect(url) as connection:
        connection.execute(SCHEMA)
        for model, (table, columns) in TABLES.items():  # parents before children
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns))
            with connection.cursor().copy(statement) as copy:
                for record in records[model]:
                    copy.write_row([None if record[f] is None else str(record[f]) for f in columns.values()])
            counts[table] = len(records[model])
    return counts
