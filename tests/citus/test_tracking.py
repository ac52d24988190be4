"""Tracking a business table distributed by company_id, co-located with the log: each change recorded
on the worker that holds the row, with the context the application set."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from audit_py import AuditService

from .cluster import CitusCluster
from .conftest import OWNER, READER, WRITER, ConnectTo, node_of, spread, system_identifier
from .test_sealing import _seal, _verify


@pytest.fixture(scope="module")
def invoices(cluster: CitusCluster) -> str:
    """public.invoices, owned by the ERP's login (which holds audit_writer), tracked."""
    with psycopg.connect(cluster.conninfo(user=OWNER), autocommit=True) as owner:
        owner.execute("CREATE TABLE public.invoices (company_id uuid NOT NULL, id uuid NOT NULL, amount numeric,"
                      " card_number text, PRIMARY KEY (company_id, id))")
        owner.execute("SELECT create_distributed_table('public.invoices', 'company_id',"
                      " colocate_with => 'audit.audit_logs')")
        owner.execute("SELECT audit.enable_tracking('public.invoices', exclude_columns => '{card_number}')")
    return "public.invoices"


def _entries(reader: psycopg.Connection[Any], companies: list[uuid.UUID]) -> list[tuple[Any, ...]]:
    return reader.execute("SELECT company_id, action, entity_id, details, user_id, context, origin"
                          " FROM audit.audit_logs WHERE company_id = ANY(%s) AND entity = 'invoice'"
                          " ORDER BY created_at, CASE action WHEN 'CREATE_INVOICE' THEN 1"
                          " WHEN 'UPDATE_INVOICE' THEN 2 ELSE 3 END", (companies,)).fetchall()


def test_changes_are_recorded_on_each_rows_worker_with_the_context(
        cluster: CitusCluster, connect_to: ConnectTo, invoices: str, capsys: Any) -> None:
    coordinator = connect_to()
    companies = spread(coordinator, cluster, 2)
    ids = [uuid.uuid4() for _ in companies]
    user = uuid.uuid4()
    conn = connect_to(role=OWNER)
    audit = AuditService(conn)
    with audit.context(user_id=user, request_id="req-7"):
        for company, invoice in zip(companies, ids, strict=True):
            conn.execute("INSERT INTO public.invoices VALUES (%s, %s, 100, '4111')", (company, invoice))
    conn.commit()
    with audit.context(user_id=user):
        conn.execute("UPDATE public.invoices SET amount = 80, card_number = '4222' WHERE company_id = ANY(%s)",
                     (companies,))
        conn.execute("DELETE FROM public.invoices WHERE company_id = %s", (companies[1],))
    conn.commit()
    entries = _entries(connect_to(role=READER), companies)
    by_company = {company: [entry for entry in entries if entry[0] == company] for company in companies}
    for company, invoice in zip(companies, ids, strict=True):
        origin = system_identifier(connect_to(node_of(coordinator, cluster, company)))
        rows = by_company[company]
        assert [row[1] for row in rows][:2] == ["CREATE_INVOICE", "UPDATE_INVOICE"]
        assert all(row[2] == invoice and row[4] == user and row[6] == origin for row in rows)
        assert rows[0][3] == {"company_id": str(company), "id": str(invoice), "amount": 100}  # no card_number
        assert rows[0][5] == {"request_id": "req-7"}
        assert rows[1][3] == {"amount": {"old": 100, "new": 80}}
    assert [row[1] for row in by_company[companies[1]]][2:] == ["DELETE_INVOICE"]
    # TRUNCATE cannot be recorded row by row: refused.
    with pytest.raises(psycopg.Error) as refused:
        conn.execute("TRUNCATE public.invoices")
    conn.rollback()
    assert refused.value.sqlstate == "AU005"
    # The tracked entries seal and verify as any other.
    sealed = _seal(connect_to)
    assert set(companies) <= set(sealed)
    for company in companies:
        status, out = _verify(cluster, company, capsys)
        assert status == 0, out


def test_a_table_not_co_located_with_the_log_is_refused(connect_to: ConnectTo, invoices: str) -> None:
    owner = connect_to(role=OWNER, autocommit=True)
    owner.execute("CREATE TABLE public.notes (id uuid PRIMARY KEY, company_id uuid NOT NULL, body text)")
    owner.execute("SELECT create_distributed_table('public.notes', 'id')")  # by id: rows and entries apart
    owner.execute("SELECT audit.enable_tracking('public.notes')")
    audit = AuditService(owner)
    with pytest.raises(psycopg.Error) as refused:
        with audit.context(user_id=uuid.uuid4()):
            owner.execute("INSERT INTO public.notes VALUES (gen_random_uuid(), gen_random_uuid(), 'x')")
    assert refused.value.sqlstate == "AU004" and "co-located with audit.audit_logs" in str(refused.value)
    assert owner.execute("SELECT count(*) FROM public.notes").fetchone() == (0,)


def _invoice_shard(conn: psycopg.Connection[Any], company: uuid.UUID) -> int:
    row = conn.execute("SELECT get_shard_id_for_distribution_column('public.invoices', %s)", (company,)).fetchone()
    assert row is not None
    return int(row[0])


def _count(connect_to: ConnectTo, company: uuid.UUID) -> int:
    row = connect_to(role=READER).execute("SELECT count(*) FROM audit.audit_logs WHERE company_id = %s",
                                          (company,)).fetchone()
    assert row is not None
    return int(row[0])


def test_a_temporary_table_named_as_a_shard_records_nothing(cluster: CitusCluster, connect_to: ConnectTo,
                                                            invoices: str) -> None:
    """A writer on a worker makes a temporary table with a shard's name and a tracking trigger by hand:
    its entries would land in that range's shard of the log whatever their company. Refused."""
    coordinator = connect_to()
    here, elsewhere = spread(coordinator, cluster, 2)
    shard = _invoice_shard(coordinator, here)
    writer = connect_to(node_of(coordinator, cluster, here), role=WRITER,
                        options="-c citus.override_table_visibility=off")
    writer.execute(f"CREATE TEMP TABLE invoices_{shard} (company_id uuid, id uuid, amount numeric,"
                   " PRIMARY KEY (company_id, id))")
    writer.execute(f"CREATE TRIGGER t AFTER INSERT ON pg_temp.invoices_{shard} REFERENCING NEW TABLE AS audit_new"
                   " FOR EACH STATEMENT EXECUTE FUNCTION audit._track_changes('{\"entity\": \"invoice\","
                   " \"key_attnum\": 2, \"action_suffix\": \"INVOICE\", \"exclude_attnums\": [],"
                   " \"exclude_columns\": []}')")
    with pytest.raises(psycopg.Error) as refused:
        writer.execute(f"INSERT INTO pg_temp.invoices_{shard} VALUES (%s, gen_random_uuid(), 1)", (elsewhere,))
    assert refused.value.sqlstate == "AU004", refused.value
    writer.rollback()
    assert _count(connect_to, elsewhere) == 0


def test_a_row_written_into_another_ranges_shard_is_refused(cluster: CitusCluster, connect_to: ConnectTo,
                                                            invoices: str) -> None:
    """The table's owner, on a worker, writes straight into a shard a row whose company Citus places in
    another shard: the entry would be sealed apart from its company's chain. Refused."""
    coordinator = connect_to()
    here, elsewhere = spread(coordinator, cluster, 2)
    shard = _invoice_shard(coordinator, here)
    assert shard != _invoice_shard(coordinator, elsewhere)
    owner = connect_to(node_of(coordinator, cluster, here), role=OWNER,
                       options="-c citus.enable_manual_changes_to_shards=on -c citus.override_table_visibility=off")
    with AuditService(owner).context(user_id=uuid.uuid4()):
        with pytest.raises(psycopg.Error) as refused:
            owner.execute(f"INSERT INTO public.invoices_{shard} VALUES (%s, gen_random_uuid(), 1)", (elsewhere,))
    assert refused.value.sqlstate == "AU004" and "another shard" in str(refused.value), refused.value
    owner.rollback()
    assert _count(connect_to, elsewhere) == 0


def test_a_client_connected_to_a_worker_writes_a_tracked_table(cluster: CitusCluster, connect_to: ConnectTo,
                                                               invoices: str) -> None:
    """Citus routes a write from any node; the trigger finds its shard though Citus hides shards from a
    client's catalog queries."""
    coordinator = connect_to()
    company = spread(coordinator, cluster, 1)[0]
    other_worker = next(w for w in cluster.workers if w != node_of(coordinator, cluster, company))
    owner = connect_to(other_worker, role=OWNER)
    with AuditService(owner).context(user_id=uuid.uuid4()):
        owner.execute("INSERT INTO public.invoices VALUES (%s, gen_random_uuid(), 5)", (company,))
    owner.commit()
    assert _count(connect_to, company) == 1
