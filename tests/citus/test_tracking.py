"""Tracking a business table distributed by company_id, co-located with the log: each change recorded
on the worker that holds the row, with the context the application set."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from audit_py import AuditService

from .cluster import CitusCluster
from .conftest import OWNER, READER, ConnectTo, node_of, spread, system_identifier
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
