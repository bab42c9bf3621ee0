"""The account lifecycle through the reference gRPC client against a server
on a test clock (`serve --test-clock`): sign-up and the trial countdown, the
trial's end without a card (runs paused) and with one, plan changes with
their prorated charges, scheduled downgrades, the monthly cycle (price plus
metered overage), declined cards, past due and PayInvoice, grace periods,
credit purchases, Enterprise contracts, and invoice PDFs checked with
poppler. Each scenario asserts the exact states, banners, charges and
invoices, and ends with `billing verify --db` clean.

Amounts are computed here in integer arithmetic from the plan table
(Pro $49/month) and the catalog in config/catalog.json.
"""

import datetime
import re
import shutil
import subprocess

import grpc
import pytest

from conftest import ROOT, RPC_TIMEOUT_S, billing_binary, error_info

DAY = 86_400
PRO = 49_000_000
TRIAL_CREDIT = 10_000_000
GRACE_DAYS = 3

GOOD_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000000000000002"
FAILS_ONCE_CARD = "4000000000000119"
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


def day(unix: int) -> str:
    """A date as the API's PDFs print it (UTC)."""
    return datetime.datetime.fromtimestamp(unix, datetime.timezone.utc).strftime("%Y-%m-%d")


def half_up(numerator: int, denominator: int) -> int:
    quotient, remainder = divmod(numerator, denominator)
    return quotient + (1 if 2 * remainder >= denominator else 0)


def in_cents(micros: int) -> int:
    """An invoice line's amount: micros rounded half-up to the cent (README: invoices are in whole cents)."""
    return half_up(micros, 10_000) * 10_000


def add_month(unix: int, anchor: int, months: int) -> int:
    """The anchor's day and time, `months` later (clamped to the month's end)."""
    a = datetime.datetime.fromtimestamp(anchor, datetime.timezone.utc)
    month0 = a.month - 1 + months
    year, month = a.year + month0 // 12, month0 % 12 + 1
    last = (datetime.date(year + (month == 12), month % 12 + 1, 1) - datetime.timedelta(days=1)).day
    return int(a.replace(year=year, month=month, day=min(a.day, last)).timestamp())


class Lifecycle:
    """Stubs on the demo service key (every scope) and the helpers the
    scenarios share."""

    def __init__(self, pb, served):
        self.pb, self.served = pb, served
        channel = served.authorized_channel()
        self.a, self.p, self.ad, self.m = pb.accounts_pb2, pb.payments_pb2, pb.admin_pb2, pb.metering_pb2
        self.accounts = pb.accounts_pb2_grpc.AccountsStub(channel)
        self.payments = pb.payments_pb2_grpc.PaymentsStub(channel)
        self.admin = pb.admin_pb2_grpc.AdminStub(channel)
        self.metering = pb.metering_pb2_grpc.MeteringStub(channel)
        self.keys = 0

    def key(self, prefix="k"):
        self.keys += 1
        return f"{prefix}-{self.keys}"

    def now(self) -> int:
        return self.admin.AdvanceClock(self.ad.AdvanceClockRequest(seconds=0), timeout=RPC_TIMEOUT_S).now_unix_seconds

    def advance(self, seconds=None, to=None):
        request = self.ad.AdvanceClockRequest(seconds=seconds) if to is None else self.ad.AdvanceClockRequest(to_unix_seconds=to)
        return self.admin.AdvanceClock(request, timeout=RPC_TIMEOUT_S)

    def create(self, account_id, plan=None):
        request = self.a.CreateAccountRequest(account_id=account_id, display_name=f"{account_id} Inc.",
                                              billing_email=f"billing@{account_id}.example")
        if plan is not None:
            request.initial_plan = plan
        return self.accounts.CreateAccount(request, timeout=RPC_TIMEOUT_S).account

    def get(self, account_id):
        return self.accounts.GetAccount(self.a.GetAccountRequest(account_id=account_id), timeout=RPC_TIMEOUT_S).account

    def card(self, number=GOOD_CARD, year=2099):
        return self.p.PaymentMethodInput(card=self.p.CardInput(number=number, exp_month=12, exp_year=year, holder_name="Ada"))

    def set_card(self, account_id, number=GOOD_CARD):
        return self.payments.SetPaymentMethod(
            self.p.SetPaymentMethodRequest(account_id=account_id, payment_method=self.card(number)), timeout=RPC_TIMEOUT_S)

    def change(self, account_id, plan, key=""):
        return self.accounts.ChangePlan(self.a.ChangePlanRequest(account_id=account_id, to_plan=plan, idempotency_key=key),
                                        timeout=RPC_TIMEOUT_S)

    def past_due_pro(self, account_id, card):
        """A Pro account with `card` on file whose first period has closed
        and whose invoice could not be charged: that invoice."""
        account = self.create(account_id, plan=self.a.PLAN_PRO)
        self.set_card(account_id, card)
        self.advance(to=account.current_period_end_unix_seconds)
        [invoice] = self.invoices(account_id)
        assert invoice.status == self.p.INVOICE_STATUS_PAST_DUE
        return invoice

    def invoices(self, account_id):
        return list(self.payments.ListInvoices(self.p.ListInvoicesRequest(account_id=account_id), timeout=RPC_TIMEOUT_S).invoices)

    def charges(self, account_id):
        return list(self.payments.ListCharges(self.p.ListChargesRequest(account_id=account_id), timeout=RPC_TIMEOUT_S).charges)

    def debit(self, account_id, key, workspace="ws-1", run=None, tokens=1000):
        c = self.pb.common_pb2
        return self.metering.Debit(self.m.DebitRequest(
            account_id=account_id, workspace_id=workspace, agent_id="agent-1", run_id=run or key, idempotency_key=key,
            line_items=[c.LineItem(llm=c.LlmUsage(model="gpt-4o", input_tokens=tokens))]), timeout=RPC_TIMEOUT_S)

    def quote(self, account_id, workspace="ws-1"):
        c = self.pb.common_pb2
        return self.metering.Quote(self.m.QuoteRequest(
            account_id=account_id, workspace_id=workspace, agent_id="agent-1", run_id="q",
            line_items=[c.LineItem(llm=c.LlmUsage(model="gpt-4o", input_tokens=1000))]), timeout=RPC_TIMEOUT_S)

    def refused(self, call, code, reason):
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == code, caught.value.details()
        info = error_info(self.pb, caught.value)
        assert info is not None and info.reason == reason, (info, caught.value.details())
        return caught.value

    def charged(self, account_id):
        """What a refused debit must leave as it was: the balance and the
        usage by day, agent and line item (a Pro account's overage shows in
        its usage)."""
        m = self.m
        usage = self.metering.GetUsage(m.GetUsageRequest(
            account_id=account_id, group_by=[m.USAGE_GROUP_BY_DAY, m.USAGE_GROUP_BY_AGENT, m.USAGE_GROUP_BY_LINE_ITEM]),
            timeout=RPC_TIMEOUT_S)
        return self.get(account_id).credit_balance_micros, usage.total_micros, list(usage.buckets)

    def debit_refused_as_paused(self, account_id, key, **fields):
        """A debit refused ACCOUNT_PAUSED: nothing charged, and the refusal
        kept under its key (GetDebit says so)."""
        before = self.charged(account_id)
        self.refused(lambda: self.debit(account_id, key, **fields), FAILED_PRECONDITION, "ACCOUNT_PAUSED")
        assert self.charged(account_id) == before, f"a paused debit ({key}) charged something"
        settled = self.metering.GetDebit(self.m.GetDebitRequest(account_id=account_id, idempotency_key=key),
                                         timeout=RPC_TIMEOUT_S)
        assert settled.outcome == self.m.DEBIT_OUTCOME_REFUSED and settled.refusal.reason == "ACCOUNT_PAUSED", settled


@pytest.fixture
def life(pb, server, verify):
    s = server(args=("--test-clock", "--grace-days", str(GRACE_DAYS), "--trial-credit-micros", str(TRIAL_CREDIT)))
    client = Lifecycle(pb, s)
    yield client
    verify(s.db_path)


def banner_kinds(account):
    return [b.kind for b in account.banners]


# --------------------------------------------------------------------------
# Sign-up, trial, trial end


def test_sign_up_starts_a_14_day_pro_trial_with_credits_and_a_countdown(life):
    a = life.a
    start = life.now()
    account = life.create("acme")
    assert account.plan == a.PLAN_PRO and account.status == a.ACCOUNT_STATUS_TRIAL and not account.paused
    assert account.trial_ends_unix_seconds == start + 14 * DAY
    assert account.trial_days_left == 14
    assert account.next_billing_unix_seconds == start + 14 * DAY
    assert account.credit_balance_micros == TRIAL_CREDIT
    assert account.display_name == "acme Inc." and account.billing_email == "billing@acme.example"
    assert banner_kinds(account) == [a.BANNER_KIND_TRIAL_COUNTDOWN]
    assert account.banners[0].message == "14 days left in your trial."
    assert account.banners[0].severity == a.BANNER_SEVERITY_INFO
    assert account.banners[0].link == "/billing/payment-method"
    # The countdown rounds up and turns to a warning in the last three days.
    life.advance(seconds=11 * DAY + 1)
    account = life.get("acme")
    assert account.trial_days_left == 3 and account.banners[0].message == "3 days left in your trial."
    assert account.banners[0].severity == a.BANNER_SEVERITY_WARNING
    assert life.invoices("acme") == [] and life.charges("acme") == []


def test_refused_inputs_name_their_field_and_change_nothing(life):
    """An address invoices could not reach, a whole API key pasted where its
    id goes (never echoed back: it is a secret), a page token no list
    issued: INVALID_ARGUMENT naming the field; nothing is created."""
    a, p, ad = life.a, life.p, life.ad
    for email in ("not-an-email", " billing@acme.example", "billing@acme", "a@b@c.example", "@acme.example", "x@.example"):
        request = a.CreateAccountRequest(account_id="acme", billing_email=email)
        error = life.refused(lambda: life.accounts.CreateAccount(request, timeout=RPC_TIMEOUT_S),
                             grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD")
        assert error_info(life.pb, error).metadata["field"] == "billing_email", email
    life.refused(lambda: life.get("acme"), grpc.StatusCode.NOT_FOUND, "ACCOUNT_NOT_FOUND")
    assert life.create("acme").billing_email == "billing@acme.example"
    pasted = "bk_0123456789ab_" + "A" * 43
    error = life.refused(lambda: life.admin.RevokeApiKey(ad.RevokeApiKeyRequest(key_id=pasted), timeout=RPC_TIMEOUT_S),
                         grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD")
    assert "A" * 43 not in error.details() and error_info(life.pb, error).metadata["field"] == "key_id"
    life.refused(lambda: life.admin.RevokeApiKey(ad.RevokeApiKeyRequest(key_id="0123456789ab"), timeout=RPC_TIMEOUT_S),
                 grpc.StatusCode.NOT_FOUND, "API_KEY_NOT_FOUND")
    # The account and invoice are checked before the gateway is asked for a
    # token (a bad card number would otherwise be the answer): nothing is
    # left at a real gateway for a request that changes nothing.
    bad_card = life.card(number="1234")
    life.refused(lambda: life.payments.SetPaymentMethod(p.SetPaymentMethodRequest(account_id="ghost", payment_method=bad_card),
                                                        timeout=RPC_TIMEOUT_S), grpc.StatusCode.NOT_FOUND, "ACCOUNT_NOT_FOUND")
    life.refused(lambda: life.payments.PayInvoice(p.PayInvoiceRequest(account_id="acme", invoice_id="in_999", payment_method=bad_card),
                                                  timeout=RPC_TIMEOUT_S), grpc.StatusCode.NOT_FOUND, "INVOICE_NOT_FOUND")
    life.refused(lambda: life.payments.SetPaymentMethod(p.SetPaymentMethodRequest(account_id="acme", payment_method=bad_card),
                                                        timeout=RPC_TIMEOUT_S), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CARD_NUMBER")
    # "b<n>" names a position in the list; one past its end was never issued.
    for token in ("b999999", "b+1"):
        request = p.ListChargesRequest(account_id="acme", page_token=token)
        life.refused(lambda: life.payments.ListCharges(request, timeout=RPC_TIMEOUT_S),
                     grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD")


def test_trial_end_without_a_card_pauses_runs_until_a_card_is_added(life):
    a, p = life.a, life.p
    start = life.now()
    life.create("acme")
    # The trial's credits are in the audit log with its creation (session 30).
    [created] = [e for e in life.admin.ListAuditLog(life.ad.ListAuditLogRequest(account_id="acme"), timeout=RPC_TIMEOUT_S).entries
                 if e.action == "CreateAccount"]
    assert dict(created.details) == {"plan": "trial", "trial_credit_micros": str(TRIAL_CREDIT)}, created
    life.debit("acme", "before-end")
    moved = life.advance(seconds=14 * DAY)
    assert [(t.account_id, t.kind, t.at_unix_seconds) for t in moved.transitions if t.account_id == "acme"] == [
        ("acme", "TRIAL_ENDED", start + 14 * DAY)]
    account = life.get("acme")
    assert account.paused and account.pause_reason == a.PAUSE_REASON_TRIAL_ENDED
    assert account.status == a.ACCOUNT_STATUS_TRIAL and account.next_billing_unix_seconds == 0
    assert banner_kinds(account) == [a.BANNER_KIND_PAUSED]
    assert account.banners[0].severity == a.BANNER_SEVERITY_CRITICAL and account.banners[0].link_text == "Add a payment method"
    balance = account.credit_balance_micros
    # Debit and Quote are refused; nothing is charged, nothing deleted.
    life.debit_refused_as_paused("acme", "after-end")
    life.refused(lambda: life.quote("acme"), FAILED_PRECONDITION, "ACCOUNT_PAUSED")
    assert life.get("acme").credit_balance_micros == balance
    # New runs are paused: a run begun before the end reports the rest of its usage, from credits.
    went_on = life.debit("acme", "before-end-more", run="before-end")
    assert went_on.total_micros > 0 and life.get("acme").credit_balance_micros == balance - went_on.total_micros
    # A card reactivates Pro at once: the first period starts now and is charged.
    life.advance(seconds=2 * DAY)
    reactivated = life.now()
    answer = life.set_card("acme")
    assert answer.applied_now and answer.current.card.last4 == "4242" and answer.current.card.brand == "visa"
    # The answer carries the charge of the first period (session 27: dropped).
    assert (answer.charge.status, answer.charge.amount_micros) == (p.CHARGE_STATUS_SUCCEEDED, PRO)
    account = life.get("acme")
    assert not account.paused and account.status == a.ACCOUNT_STATUS_ACTIVE and account.plan == a.PLAN_PRO
    assert account.current_period_start_unix_seconds == reactivated
    assert account.current_period_end_unix_seconds == add_month(reactivated, reactivated, 1)
    assert account.banners == []
    [invoice] = life.invoices("acme")
    assert invoice.status == p.INVOICE_STATUS_PAID and invoice.total_micros == PRO and invoice.number == "INV-000001"
    assert [(l.kind, l.amount_micros) for l in invoice.line_items] == [(p.INVOICE_LINE_KIND_PLAN_FEE, PRO)]
    [charge] = life.charges("acme")
    assert (charge.status, charge.amount_micros, charge.invoice_id, charge.kind) == (
        p.CHARGE_STATUS_SUCCEEDED, PRO, invoice.invoice_id, p.CHARGE_KIND_INVOICE_PAYMENT)
    assert charge.payment_method_label == "visa •••• 4242"
    # Runs resume with the state they had.
    assert life.debit("acme", "after-card").balance_after_micros < balance


def test_a_declined_card_leaves_a_paused_trial_paused_with_its_way_to_free(life):
    """Session 31: a paused trial's first period is charged before it
    restarts. Declined, the card is not kept, the invoice is VOID (nothing
    owed) and the trial stays paused: another card restarts it, or Free
    (DESIGN.md). Before, it restarted on Pro at once and a decline left it
    past due, Free only after the period with the $49 still owed."""
    a, p = life.a, life.p
    life.create("acme")
    life.create("other")
    life.advance(seconds=15 * DAY)
    before = life.charged("acme")
    answer = life.set_card("acme", DECLINED_CARD)
    assert not answer.applied_now and not answer.HasField("current") and not answer.HasField("pending")
    assert (answer.charge.status, answer.charge.failure_reason, answer.charge.amount_micros) == (
        p.CHARGE_STATUS_FAILED, "CARD_DECLINED", PRO)
    assert answer.charge.payment_method_id == "" and answer.charge.payment_method_label == "visa •••• 0002"
    account = life.get("acme")
    assert account.paused and account.pause_reason == a.PAUSE_REASON_TRIAL_ENDED and account.status == a.ACCOUNT_STATUS_TRIAL
    assert banner_kinds(account) == [a.BANNER_KIND_PAUSED]
    got = life.payments.GetPaymentMethod(p.GetPaymentMethodRequest(account_id="acme"), timeout=RPC_TIMEOUT_S)
    assert not got.HasField("current") and not got.HasField("pending")
    [invoice] = life.invoices("acme")
    assert (invoice.status, invoice.amount_due_micros, invoice.amount_paid_micros, invoice.total_micros, invoice.pay_link) == (
        p.INVOICE_STATUS_VOID, 0, 0, PRO, "")
    assert answer.charge.invoice_id == invoice.invoice_id
    pdf = life.payments.GetInvoicePdf(p.GetInvoicePdfRequest(account_id="acme", invoice_id=invoice.invoice_id),
                                      timeout=RPC_TIMEOUT_S).pdf
    text = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, timeout=30, check=True).stdout.decode()
    assert "VOID" in text, text
    life.refused(lambda: life.payments.PayInvoice(p.PayInvoiceRequest(account_id="acme", invoice_id=invoice.invoice_id),
                                                  timeout=RPC_TIMEOUT_S), FAILED_PRECONDITION, "INVOICE_VOID")
    life.debit_refused_as_paused("acme", "still-paused")
    assert life.charged("acme") == before
    # The way out to Free: at once, nothing owed, runs resume.
    answer = life.change("acme", a.PLAN_FREE)
    assert answer.effect == a.PLAN_CHANGE_EFFECT_APPLIED and answer.account.plan == a.PLAN_FREE
    assert not answer.account.paused and answer.account.status == a.ACCOUNT_STATUS_ACTIVE and answer.account.banners == []
    life.debit("acme", "on-free")
    # A card that fails once: its first charge voids the invoice, the same
    # card given again restarts Pro from then, a new invoice paid.
    first = life.set_card("other", FAILS_ONCE_CARD)
    assert first.charge.failure_reason == "PROCESSING_ERROR" and not first.applied_now and life.get("other").paused
    life.advance(seconds=3600)
    restarted = life.now()
    again = life.set_card("other", FAILS_ONCE_CARD)
    assert again.applied_now and again.charge.status == p.CHARGE_STATUS_SUCCEEDED and again.current.card.last4 == "0119"
    account = life.get("other")
    assert not account.paused and account.status == a.ACCOUNT_STATUS_ACTIVE and account.plan == a.PLAN_PRO
    assert account.current_period_start_unix_seconds == restarted
    assert sorted((i.number, i.status) for i in life.invoices("other")) == [
        ("INV-000002", p.INVOICE_STATUS_VOID), ("INV-000003", p.INVOICE_STATUS_PAID)]
    life.debit("other", "on-pro")


def test_trial_end_with_a_card_converts_to_pro_and_charges_the_first_period(life):
    a, p = life.a, life.p
    start = life.now()
    life.create("acme")
    life.set_card("acme")
    moved = life.advance(seconds=15 * DAY)
    kinds = [t.kind for t in moved.transitions if t.account_id == "acme"]
    assert kinds == ["TRIAL_ENDED", "PAYMENT_SUCCEEDED"]
    account = life.get("acme")
    assert account.status == a.ACCOUNT_STATUS_ACTIVE and not account.paused
    # Periods are anchored on the trial's end.
    assert account.current_period_start_unix_seconds == start + 14 * DAY
    [invoice] = life.invoices("acme")
    assert invoice.status == p.INVOICE_STATUS_PAID and invoice.period_start_unix_seconds == start + 14 * DAY


def test_downgrading_a_paused_trial_to_free_resumes_runs_on_free(life):
    a = life.a
    life.create("acme")
    life.advance(seconds=14 * DAY)
    assert life.get("acme").paused
    answer = life.change("acme", a.PLAN_FREE)
    assert answer.effect == a.PLAN_CHANGE_EFFECT_APPLIED
    account = answer.account
    assert account.plan == a.PLAN_FREE and account.status == a.ACCOUNT_STATUS_ACTIVE and not account.paused
    assert account.run_quota == 200 and account.max_workspaces == 1
    assert life.invoices("acme") == []
    life.debit("acme", "on-free")


# --------------------------------------------------------------------------
# Plan changes


def test_mid_period_upgrade_is_prorated_and_charged_at_once(life):
    a, p = life.a, life.p
    account = life.create("acme", plan=a.PLAN_FREE)
    start, end = account.current_period_start_unix_seconds, account.current_period_end_unix_seconds
    life.set_card("acme")
    life.advance(seconds=10 * DAY + 3600)
    now = life.now()
    answer = life.change("acme", a.PLAN_PRO, key="up-1")
    expected = in_cents(half_up(PRO * (end - now), end - start))
    assert answer.effect == a.PLAN_CHANGE_EFFECT_APPLIED and answer.account.plan == a.PLAN_PRO
    assert answer.invoice.kind == p.INVOICE_KIND_PLAN_CHANGE and answer.invoice.total_micros == expected
    assert answer.invoice.status == p.INVOICE_STATUS_PAID
    assert [(l.kind, l.period_start_unix_seconds, l.period_end_unix_seconds) for l in answer.invoice.line_items] == [
        (p.INVOICE_LINE_KIND_PRORATION, now, end)]
    assert answer.charge.status == p.CHARGE_STATUS_SUCCEEDED and answer.charge.amount_micros == expected
    # The audit log names the caller who asked for the upgrade as the charge's, not "system".
    audit = life.admin.ListAuditLog(life.ad.ListAuditLogRequest(account_id="acme"), timeout=RPC_TIMEOUT_S).entries
    charged = [e for e in audit if e.action in ("ChargeStarted", "InvoicePayment")]
    assert charged and all(e.actor.startswith("key:") for e in charged), [(e.action, e.actor) for e in charged]
    # A retry with the same key charges nothing more and answers the same.
    again = life.change("acme", a.PLAN_PRO, key="up-1")
    assert again.invoice == answer.invoice and again.charge == answer.charge
    assert len(life.charges("acme")) == 1
    # The same key for another plan is refused.
    life.refused(lambda: life.change("acme", a.PLAN_FREE, key="up-1"), grpc.StatusCode.ALREADY_EXISTS, "IDEMPOTENCY_KEY_REUSED")
    # The next period bills the full price.
    life.advance(to=end)
    invoices = life.invoices("acme")
    assert [i.total_micros for i in invoices] == [PRO, expected]
    assert invoices[0].line_items[0].period_start_unix_seconds == end and invoices[0].period_end_unix_seconds == end


def test_upgrade_without_a_payment_method_is_refused(life):
    a = life.a
    life.create("acme", plan=a.PLAN_FREE)
    life.refused(lambda: life.change("acme", a.PLAN_PRO), FAILED_PRECONDITION, "PAYMENT_METHOD_REQUIRED")
    assert life.get("acme").plan == a.PLAN_FREE and life.invoices("acme") == []


def test_downgrade_is_pending_until_the_period_end_and_cancellable(life):
    a = life.a
    account = life.create("acme", plan=a.PLAN_PRO)
    end = account.current_period_end_unix_seconds
    life.set_card("acme")
    answer = life.change("acme", a.PLAN_FREE)
    assert answer.effect == a.PLAN_CHANGE_EFFECT_SCHEDULED and answer.account.plan == a.PLAN_PRO
    assert answer.account.pending_change.to_plan == a.PLAN_FREE
    assert answer.account.pending_change.effective_unix_seconds == end
    assert banner_kinds(answer.account) == [a.BANNER_KIND_PENDING_PLAN_CHANGE]
    # Cancelled, then scheduled again.
    cancelled = life.accounts.CancelPendingChange(a.CancelPendingChangeRequest(account_id="acme"), timeout=RPC_TIMEOUT_S)
    assert not cancelled.account.HasField("pending_change") and cancelled.account.banners == []
    life.refused(lambda: life.accounts.CancelPendingChange(a.CancelPendingChangeRequest(account_id="acme"), timeout=RPC_TIMEOUT_S),
                 FAILED_PRECONDITION, "NO_PENDING_CHANGE")
    # Keeping the current plan (the banner's "Keep your current plan") cancels it too.
    life.change("acme", a.PLAN_FREE)
    kept = life.change("acme", a.PLAN_PRO)
    assert kept.effect == a.PLAN_CHANGE_EFFECT_UNCHANGED and not kept.account.HasField("pending_change")
    audit = life.admin.ListAuditLog(life.ad.ListAuditLogRequest(account_id="acme"), timeout=RPC_TIMEOUT_S).entries
    assert audit[0].action == "ChangePlan" and audit[0].details["cancelled_pending_change"] == "true", audit[0]
    life.change("acme", a.PLAN_FREE)
    life.advance(to=end - 1)
    assert life.get("acme").plan == a.PLAN_PRO
    moved = life.advance(to=end)
    assert [t.kind for t in moved.transitions if t.account_id == "acme"] == ["PERIOD_CLOSED", "PLAN_CHANGE_APPLIED"]
    account = life.get("acme")
    assert account.plan == a.PLAN_FREE and not account.HasField("pending_change") and account.run_quota == 200
    assert life.invoices("acme") == []  # Free costs nothing, and no usage accrued


def test_enterprise_is_for_sales_only(life):
    a = life.a
    life.create("acme")
    error = life.refused(lambda: life.change("acme", a.PLAN_ENTERPRISE), FAILED_PRECONDITION, "CONTACT_SALES")
    assert "sales" in error.details()
    assert life.get("acme").status == a.ACCOUNT_STATUS_TRIAL


def test_an_operators_enterprise_contract_bills_price_custom_lines_and_usage(life):
    a, p = life.a, life.p
    account = life.create("bigco", plan=a.PLAN_PRO)
    end = account.current_period_end_unix_seconds
    life.set_card("bigco")
    contract = a.EnterpriseContract(
        contract_reference="ENT-7", period_price_micros=2_000_000_000, included_usage_micros=1_000,
        usage_rate_basis_points=8_000, run_quota=0, max_workspaces=0,
        custom_invoice_lines=[a.CustomInvoiceLine(description="Dedicated support", amount_micros=500_000_000)])
    answer = life.admin.SetEnterpriseContract(life.ad.SetEnterpriseContractRequest(account_id="bigco", contract=contract),
                                              timeout=RPC_TIMEOUT_S)
    assert answer.account.plan == a.PLAN_ENTERPRISE and answer.account.enterprise_contract.contract_reference == "ENT-7"
    # The audit log shows every term that changes what is billed.
    [audited] = [e for e in life.admin.ListAuditLog(life.ad.ListAuditLogRequest(account_id="bigco"), timeout=RPC_TIMEOUT_S).entries
                 if e.action == "SetEnterpriseContract"]
    assert {k: audited.details[k] for k in ("period_price_micros", "included_usage_micros", "usage_rate_basis_points",
                                            "run_quota", "max_workspaces", "custom_invoice_lines")} == {
        "period_price_micros": "2000000000", "included_usage_micros": "1000", "usage_rate_basis_points": "8000",
        "run_quota": "0", "max_workspaces": "0", "custom_invoice_lines": "1"}
    # A move from Pro mid-period is an upgrade: the rest of the period is
    # charged at once, the price difference and the custom line's share.
    [upgrade] = life.invoices("bigco")
    assert upgrade.kind == p.INVOICE_KIND_PLAN_CHANGE and upgrade.status == p.INVOICE_STATUS_PAID
    # The answer carries that charge (session 27: nothing said a card was charged).
    assert (answer.charge.invoice_id, answer.charge.status, answer.charge.amount_micros) == (
        upgrade.invoice_id, p.CHARGE_STATUS_SUCCEEDED, upgrade.total_micros)
    renewed_terms = life.admin.SetEnterpriseContract(
        life.ad.SetEnterpriseContractRequest(account_id="bigco", contract=contract), timeout=RPC_TIMEOUT_S)
    assert not renewed_terms.HasField("charge"), "new terms on Enterprise charge nothing at once"
    assert upgrade.contract_reference == "ENT-7" and upgrade.period_end_unix_seconds == end
    start = account.current_period_start_unix_seconds
    remaining = end - upgrade.period_start_unix_seconds
    assert [(l.kind, l.amount_micros) for l in upgrade.line_items] == [
        (p.INVOICE_LINE_KIND_PRORATION, in_cents(half_up((2_000_000_000 - 49_000_000) * remaining, end - start))),
        (p.INVOICE_LINE_KIND_CUSTOM, in_cents(half_up(500_000_000 * remaining, end - start))),
    ]
    overage = life.debit("bigco", "run-1", tokens=400_000).overage_micros  # beyond the balance: metered
    assert overage > 1_000
    # The Overview shows the usage at list price and what the period end will invoice for it.
    before_close = life.get("bigco")
    assert before_close.accrued_overage_micros == overage
    assert before_close.accrued_overage_charge_micros == half_up((overage - 1_000) * 8_000, 10_000)
    life.advance(to=end)
    [invoice] = [i for i in life.invoices("bigco") if i.kind == p.INVOICE_KIND_PERIOD]
    assert [(l.kind, l.amount_micros) for l in invoice.line_items] == [
        (p.INVOICE_LINE_KIND_CONTRACT_FEE, 2_000_000_000),
        (p.INVOICE_LINE_KIND_CUSTOM, 500_000_000),
        (p.INVOICE_LINE_KIND_METERED_USAGE, in_cents(half_up((overage - 1_000) * 8_000, 10_000))),
    ]
    assert invoice.status == p.INVOICE_STATUS_PAID
    assert invoice.contract_reference == "ENT-7"
    # A later contract does not relabel the invoice, nor its PDF.
    renewed = a.EnterpriseContract(contract_reference="ENT-8", period_price_micros=2_000_000_000, usage_rate_basis_points=8_000)
    life.admin.SetEnterpriseContract(life.ad.SetEnterpriseContractRequest(account_id="bigco", contract=renewed), timeout=RPC_TIMEOUT_S)
    [invoice] = [i for i in life.invoices("bigco") if i.kind == p.INVOICE_KIND_PERIOD]
    assert invoice.contract_reference == "ENT-7"
    pdf = life.payments.GetInvoicePdf(p.GetInvoicePdfRequest(account_id="bigco", invoice_id=invoice.invoice_id),
                                      timeout=RPC_TIMEOUT_S).pdf
    text = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, timeout=30, check=True).stdout.decode()
    assert "ENT-7" in text and "ENT-8" not in text, text
    # Operator notes: the service key sees them, the customer's users never do.
    noted = a.EnterpriseContract(contract_reference="ENT-7", period_price_micros=2_000_000_000, usage_rate_basis_points=8_000,
                                 notes="INTERNAL: max discount 40%",
                                 start_unix_seconds=1_700_000_000, end_unix_seconds=1_800_000_000)
    answer = life.admin.SetEnterpriseContract(life.ad.SetEnterpriseContractRequest(account_id="bigco", contract=noted),
                                              timeout=RPC_TIMEOUT_S)
    assert answer.account.enterprise_contract.notes == "INTERNAL: max discount 40%"
    operator_view = life.get("bigco").enterprise_contract
    assert operator_view.notes == "INTERNAL: max discount 40%"
    assert (operator_view.start_unix_seconds, operator_view.end_unix_seconds) == (1_700_000_000, 1_800_000_000)
    for role, permissions in (("owner", ()), ("admin", ()), ("viewer", ("billing:read",))):
        token = life.served.mint(account_id="bigco", role=role, permissions=permissions)
        user = life.pb.accounts_pb2_grpc.AccountsStub(life.served.authorized_channel(token))
        seen = user.GetAccount(a.GetAccountRequest(account_id="bigco"), timeout=RPC_TIMEOUT_S).account
        assert seen.enterprise_contract.contract_reference == "ENT-7" and seen.enterprise_contract.notes == "", role
        # The contract's dates are operators' too (README: Enterprise contracts).
        assert (seen.enterprise_contract.start_unix_seconds, seen.enterprise_contract.end_unix_seconds) == (0, 0), role
    # So in the answers of ChangePlan and CancelPendingChange (session 29:
    # there a service key was given the customer's view).
    secret = "INTERNAL: max discount 40%"
    assert life.change("bigco", a.PLAN_PRO).account.enterprise_contract.notes == secret  # a downgrade: scheduled
    assert life.accounts.CancelPendingChange(a.CancelPendingChangeRequest(account_id="bigco"),
                                             timeout=RPC_TIMEOUT_S).account.enterprise_contract.notes == secret
    owner = life.pb.accounts_pb2_grpc.AccountsStub(life.served.authorized_channel(life.served.mint(account_id="bigco", role="owner")))
    seen = owner.ChangePlan(a.ChangePlanRequest(account_id="bigco", to_plan=a.PLAN_PRO, idempotency_key="owner-down"),
                            timeout=RPC_TIMEOUT_S).account.enterprise_contract
    assert (seen.contract_reference, seen.notes, seen.start_unix_seconds) == ("ENT-7", "", 0)
    seen = owner.CancelPendingChange(a.CancelPendingChangeRequest(account_id="bigco"), timeout=RPC_TIMEOUT_S).account.enterprise_contract
    assert (seen.contract_reference, seen.notes, seen.start_unix_seconds) == ("ENT-7", "", 0)
    # Each broken rule is refused naming its field (ErrorInfo and message).
    # Invoices charge whole cents: a price or custom line between them is refused.
    line = a.CustomInvoiceLine
    for field, bad in (("period_price_micros", dict(period_price_micros=-1)),
                       ("period_price_micros", dict(period_price_micros=1_000_004_000)),
                       ("included_usage_micros", dict(included_usage_micros=-1)),
                       ("usage_rate_basis_points", dict(usage_rate_basis_points=100_001)),
                       ("usage_rate_basis_points", dict(usage_rate_basis_points=-1)),
                       ("run_quota", dict(run_quota=-5)),
                       ("max_workspaces", dict(max_workspaces=-1)),
                       ("max_workspaces", dict(max_workspaces=1 << 31)),
                       ("custom_invoice_lines[1].amount_micros",
                        dict(custom_invoice_lines=[line(description="x", amount_micros=10_000),
                                                   line(description="y", amount_micros=4_000)])),
                       ("custom_invoice_lines[0].amount_micros",
                        dict(custom_invoice_lines=[line(description="x", amount_micros=-10_000)])),
                       ("custom_invoice_lines", dict(period_price_micros=9_000_000_000_000_000_000,
                                                     custom_invoice_lines=[line(description="x", amount_micros=10**18)])),
                       # At most $1,000,000,000 a period each (session 30: no ceiling before).
                       ("period_price_micros", dict(period_price_micros=10**15 + 10_000)),
                       ("custom_invoice_lines[0].amount_micros",
                        dict(custom_invoice_lines=[line(description="x", amount_micros=10**15 + 10_000)]))):
        terms = dict(period_price_micros=10_000, usage_rate_basis_points=10_000) | bad
        request = life.ad.SetEnterpriseContractRequest(account_id="bigco", contract=a.EnterpriseContract(**terms))
        error = life.refused(lambda: life.admin.SetEnterpriseContract(request, timeout=RPC_TIMEOUT_S),
                             grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CONTRACT")
        assert error_info(life.pb, error).metadata["field"] == f"contract.{field}", (terms, error.details())
        assert error.details().startswith(f"contract.{field} "), error.details()
    # Left out, the rate (or the whole contract) would make usage free: refused, nothing changed.
    before = life.get("bigco").enterprise_contract
    for partial in (None, a.EnterpriseContract(contract_reference="ENT-9", period_price_micros=1)):
        request = life.ad.SetEnterpriseContractRequest(account_id="bigco", contract=partial)
        life.refused(lambda: life.admin.SetEnterpriseContract(request, timeout=RPC_TIMEOUT_S),
                     grpc.StatusCode.INVALID_ARGUMENT, "MISSING_FIELD")
    assert life.get("bigco").enterprise_contract == before
    free_usage = a.EnterpriseContract(contract_reference="ENT-9", period_price_micros=10_000, usage_rate_basis_points=0)
    life.admin.SetEnterpriseContract(life.ad.SetEnterpriseContractRequest(account_id="bigco", contract=free_usage),
                                     timeout=RPC_TIMEOUT_S)  # an explicit 0: usage not invoiced, by choice
    assert life.get("bigco").enterprise_contract.HasField("usage_rate_basis_points")


# --------------------------------------------------------------------------
# The billing cycle, past due, grace


def test_pro_cycle_invoice_is_the_price_plus_metered_overage(life):
    a, p = life.a, life.p
    account = life.create("acme", plan=a.PLAN_PRO)
    end = account.current_period_end_unix_seconds
    life.set_card("acme")
    first = life.debit("acme", "r1", tokens=1_000_000)
    second = life.debit("acme", "r2", tokens=2_000_000)
    overage = first.overage_micros + second.overage_micros
    assert overage == first.total_micros + second.total_micros  # no credits: all metered
    assert life.get("acme").accrued_overage_micros == overage
    assert life.get("acme").accrued_overage_charge_micros == overage  # (Pro: invoiced as it is)
    moved = life.advance(to=end)
    assert [t.kind for t in moved.transitions if t.account_id == "acme"] == ["PERIOD_CLOSED", "PAYMENT_SUCCEEDED"]
    [invoice] = life.invoices("acme")
    assert invoice.kind == p.INVOICE_KIND_PERIOD and invoice.status == p.INVOICE_STATUS_PAID
    assert [(l.kind, l.amount_micros) for l in invoice.line_items] == [
        (p.INVOICE_LINE_KIND_PLAN_FEE, PRO), (p.INVOICE_LINE_KIND_METERED_USAGE, overage)]
    assert invoice.total_micros == PRO + overage and invoice.amount_due_micros == 0
    # Usage is billed for the closed period, the plan for the new one.
    assert invoice.line_items[1].period_end_unix_seconds == end
    assert invoice.line_items[0].period_start_unix_seconds == end
    account = life.get("acme")
    assert account.accrued_overage_micros == 0 and account.runs_this_period == 0


def test_declined_card_makes_the_account_past_due_until_paid_with_a_good_card(life):
    a, p = life.a, life.p
    account = life.create("acme", plan=a.PLAN_PRO)
    end = account.current_period_end_unix_seconds
    life.set_card("acme", DECLINED_CARD)
    moved = life.advance(to=end)
    assert [t.kind for t in moved.transitions if t.account_id == "acme"] == ["PERIOD_CLOSED", "PAYMENT_FAILED"]
    [invoice] = life.invoices("acme")
    assert invoice.status == p.INVOICE_STATUS_PAST_DUE and invoice.past_due and invoice.amount_due_micros == PRO
    assert invoice.pay_link == f"/billing/invoices/{invoice.invoice_id}/pay"
    account = life.get("acme")
    assert account.status == a.ACCOUNT_STATUS_PAST_DUE and not account.paused
    assert banner_kinds(account) == [a.BANNER_KIND_PAST_DUE]
    assert account.banners[0].invoice_id == invoice.invoice_id and account.banners[0].link == invoice.pay_link
    [failed] = life.charges("acme")
    assert failed.status == p.CHARGE_STATUS_FAILED and failed.failure_reason == "CARD_DECLINED"
    # Retrying with the card on file is declined again (and recorded).
    life.refused(lambda: life.payments.PayInvoice(p.PayInvoiceRequest(account_id="acme", invoice_id=invoice.invoice_id),
                                                  timeout=RPC_TIMEOUT_S), FAILED_PRECONDITION, "PAYMENT_DECLINED")
    # Another declining card given with PayInvoice: declined, not put on
    # file, and its charge names no method id (session 30: "pm_N", an id no
    # list shows); its label says which card it was.
    life.refused(lambda: life.payments.PayInvoice(p.PayInvoiceRequest(account_id="acme", invoice_id=invoice.invoice_id,
                                                                      payment_method=life.card(DECLINED_CARD)),
                                                  timeout=RPC_TIMEOUT_S), FAILED_PRECONDITION, "PAYMENT_DECLINED")
    declined_new = life.charges("acme")[0]
    assert declined_new.status == p.CHARGE_STATUS_FAILED and declined_new.payment_method_id == "", declined_new
    assert declined_new.payment_method_label.endswith("0002"), declined_new
    on_file = life.payments.GetPaymentMethod(p.GetPaymentMethodRequest(account_id="acme"), timeout=RPC_TIMEOUT_S)
    assert failed.payment_method_id == on_file.current.payment_method_id != ""
    # A good card given with PayInvoice pays it and goes on file.
    paid = life.payments.PayInvoice(p.PayInvoiceRequest(account_id="acme", invoice_id=invoice.invoice_id,
                                                        payment_method=life.card(), idempotency_key="pay-1"),
                                    timeout=RPC_TIMEOUT_S)
    assert paid.invoice.status == p.INVOICE_STATUS_PAID and not paid.invoice.past_due
    assert paid.charge.status == p.CHARGE_STATUS_SUCCEEDED and paid.charge.payment_method_label == "visa •••• 4242"
    # Its retry (the same request) is answered from the key; without the
    # card it is another request (session 29: answered as the retry).
    again = life.payments.PayInvoice(p.PayInvoiceRequest(account_id="acme", invoice_id=invoice.invoice_id,
                                                         payment_method=life.card(), idempotency_key="pay-1"), timeout=RPC_TIMEOUT_S)
    assert again.charge == paid.charge
    life.refused(lambda: life.payments.PayInvoice(p.PayInvoiceRequest(account_id="acme", invoice_id=invoice.invoice_id,
                                                                      idempotency_key="pay-1"), timeout=RPC_TIMEOUT_S),
                 grpc.StatusCode.ALREADY_EXISTS, "IDEMPOTENCY_KEY_REUSED")
    account = life.get("acme")
    assert account.status == a.ACCOUNT_STATUS_ACTIVE and account.banners == []
    assert [c.status for c in life.charges("acme")] == [p.CHARGE_STATUS_SUCCEEDED] + [p.CHARGE_STATUS_FAILED] * 3
    method = life.payments.GetPaymentMethod(p.GetPaymentMethodRequest(account_id="acme"), timeout=RPC_TIMEOUT_S)
    assert method.current.card.last4 == "4242"
    life.refused(lambda: life.payments.PayInvoice(p.PayInvoiceRequest(account_id="acme", invoice_id=invoice.invoice_id),
                                                  timeout=RPC_TIMEOUT_S), FAILED_PRECONDITION, "INVOICE_ALREADY_PAID")
    # The audit log names who asked for each attempt — the period close's is
    # the system's, PayInvoice's its caller's — and the card a payment put on file.
    audit = life.admin.ListAuditLog(life.ad.ListAuditLogRequest(account_id="acme"), timeout=RPC_TIMEOUT_S).entries
    attempts = {e.details["charge_id"]: e for e in audit if e.action == "InvoicePayment"}
    assert attempts[failed.charge_id].actor == "system"
    assert attempts[paid.charge.charge_id].actor.startswith("key:")
    assert attempts[paid.charge.charge_id].details["new_payment_method_id"] == method.current.payment_method_id
    assert all(e.actor.startswith("key:") and "new_payment_method_id" not in e.details
               for charge_id, e in attempts.items() if charge_id not in (failed.charge_id, paid.charge.charge_id))


def test_past_due_beyond_the_grace_period_pauses_runs_until_paid(life):
    a, p = life.a, life.p
    account = life.create("acme", plan=a.PLAN_PRO)
    end = account.current_period_end_unix_seconds
    life.set_card("acme", DECLINED_CARD)
    life.advance(to=end)
    life.advance(to=end + GRACE_DAYS * DAY - 1)
    assert not life.get("acme").paused
    moved = life.advance(to=end + GRACE_DAYS * DAY)
    assert [t.kind for t in moved.transitions if t.account_id == "acme"] == ["GRACE_ENDED"]
    account = life.get("acme")
    assert account.paused and account.pause_reason == a.PAUSE_REASON_PAST_DUE
    assert banner_kinds(account) == [a.BANNER_KIND_PAUSED, a.BANNER_KIND_PAST_DUE]
    life.debit_refused_as_paused("acme", "paused")
    [invoice] = life.invoices("acme")
    # Its PDF sends the reader to the app (session 27: it printed the app's
    # relative pay route, no address a reader could open).
    pdf = life.payments.GetInvoicePdf(p.GetInvoicePdfRequest(account_id="acme", invoice_id=invoice.invoice_id),
                                      timeout=RPC_TIMEOUT_S).pdf
    text = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, timeout=30,
                          check=True).stdout.decode()
    assert "Billing tab" in " ".join(text.split()) and "/billing/invoices/" not in text, text
    life.payments.PayInvoice(p.PayInvoiceRequest(account_id="acme", invoice_id=invoice.invoice_id, payment_method=life.card()),
                             timeout=RPC_TIMEOUT_S)
    account = life.get("acme")
    assert not account.paused and account.status == a.ACCOUNT_STATUS_ACTIVE
    life.debit("acme", "resumed")


def test_a_card_that_fails_once_succeeds_on_retry(life):
    p = life.p
    invoice = life.past_due_pro("acme", FAILS_ONCE_CARD)
    paid = life.payments.PayInvoice(p.PayInvoiceRequest(account_id="acme", invoice_id=invoice.invoice_id), timeout=RPC_TIMEOUT_S)
    assert paid.invoice.status == p.INVOICE_STATUS_PAID
    assert [c.failure_reason for c in life.charges("acme")] == ["", "PROCESSING_ERROR"]


def test_the_fail_once_card_given_again_with_pay_invoice_succeeds(life):
    """The banner's "update payment and pay" with the fail-once test card:
    its first charge fails, and paying again with the same card, given
    inline again (tokenized anew), succeeds."""
    p = life.p
    invoice = life.past_due_pro("acme", DECLINED_CARD)

    def pay(key):
        return life.payments.PayInvoice(p.PayInvoiceRequest(account_id="acme", invoice_id=invoice.invoice_id,
                                                             payment_method=life.card(FAILS_ONCE_CARD), idempotency_key=key),
                                        timeout=RPC_TIMEOUT_S)
    life.refused(lambda: pay("first"), FAILED_PRECONDITION, "PAYMENT_DECLINED")
    paid = pay("second")
    assert paid.invoice.status == p.INVOICE_STATUS_PAID
    assert [c.failure_reason for c in life.charges("acme")] == ["", "PROCESSING_ERROR", "CARD_DECLINED"]  # newest first


def test_every_user_of_the_account_gets_its_banners(life):
    """The docs' "countdown banner across the app" and past-due banner:
    GetBanners gives any role of the account (Members and Viewers too, who
    may not read billing) GetAccount's banners — to those who may not read
    billing without the invoice, the links to billing's flows, or what
    failed; another account's user is NOT_FOUND."""
    a = life.a
    life.create("acme")
    life.advance(seconds=11 * 86_400)
    expected = list(life.get("acme").banners)
    assert [b.kind for b in expected] == [a.BANNER_KIND_TRIAL_COUNTDOWN] and expected[0].severity == a.BANNER_SEVERITY_WARNING
    assert expected[0].link  # "Add a payment method", for those who can
    stripped = [a.Banner(kind=b.kind, severity=b.severity, message=b.message) for b in expected]

    def banners(account, role, permissions=()):
        user = life.pb.accounts_pb2_grpc.AccountsStub(
            life.served.authorized_channel(life.served.mint(account_id=account, role=role, permissions=permissions)))
        return user, list(user.GetBanners(a.GetBannersRequest(account_id=account), timeout=RPC_TIMEOUT_S).banners)
    for role, permissions, shown in (("viewer", (), stripped), ("member", (), stripped), ("finance", (), stripped),
                                     ("member", ("billing:read",), expected), ("owner", (), expected)):
        user, seen = banners("acme", role, permissions)
        assert seen == shown, (role, permissions, seen)
        if role == "viewer":  # the Overview itself stays billing's
            life.refused(lambda: user.GetAccount(a.GetAccountRequest(account_id="acme"), timeout=RPC_TIMEOUT_S),
                         grpc.StatusCode.PERMISSION_DENIED, "BILLING_READ_REQUIRED")
    # Past due: the Owner sees which invoice and its pay link; a Member that a payment failed, and who can fix it.
    invoice = life.past_due_pro("late", DECLINED_CARD)
    _, owners = banners("late", "owner")
    assert [(b.kind, b.invoice_id, bool(b.link)) for b in owners] == [(a.BANNER_KIND_PAST_DUE, invoice.invoice_id, True)]
    _, members = banners("late", "member")
    assert [(b.kind, b.invoice_id, b.link) for b in members] == [(a.BANNER_KIND_PAST_DUE, "", "")]
    assert "INV-" not in members[0].message and "Owner or Admin" in members[0].message, members[0].message
    outsider = life.pb.accounts_pb2_grpc.AccountsStub(
        life.served.authorized_channel(life.served.mint(account_id="other", role="owner")))
    life.refused(lambda: outsider.GetBanners(a.GetBannersRequest(account_id="acme"), timeout=RPC_TIMEOUT_S),
                 grpc.StatusCode.NOT_FOUND, "ACCOUNT_NOT_FOUND")
    # Nothing to show: none.
    life.create("quiet", plan=a.PLAN_FREE)
    assert list(life.accounts.GetBanners(a.GetBannersRequest(account_id="quiet"), timeout=RPC_TIMEOUT_S).banners) == []


def test_a_replacement_card_applies_at_the_next_cycle(life):
    a, p = life.a, life.p
    account = life.create("acme", plan=a.PLAN_PRO)
    end = account.current_period_end_unix_seconds
    life.set_card("acme", DECLINED_CARD)
    answer = life.set_card("acme", GOOD_CARD)
    assert not answer.applied_now and answer.current.card.last4 == "0002" and answer.pending.card.last4 == "4242"
    assert answer.pending.effective_unix_seconds == end
    moved = life.advance(to=end)
    # AdvanceClock names the replacement as a transition of its own.
    kinds = [t.kind for t in moved.transitions if t.account_id == "acme"]
    assert "PERIOD_CLOSED" in kinds and "PAYMENT_METHOD_APPLIED" in kinds, kinds
    # The replacement applied before the period's invoice was charged.
    [invoice] = life.invoices("acme")
    assert invoice.status == p.INVOICE_STATUS_PAID
    method = life.payments.GetPaymentMethod(p.GetPaymentMethodRequest(account_id="acme"), timeout=RPC_TIMEOUT_S)
    assert method.current.card.last4 == "4242" and not method.HasField("pending")


# --------------------------------------------------------------------------
# Credits


def test_purchase_credits_charges_once_per_key_and_issues_a_paid_invoice(life):
    a, p = life.a, life.p
    life.create("acme", plan=a.PLAN_FREE)
    request = p.PurchaseCreditsRequest(account_id="acme", amount_micros=25_000_000, idempotency_key="buy-1")
    life.refused(lambda: life.payments.PurchaseCredits(request, timeout=RPC_TIMEOUT_S), FAILED_PRECONDITION,
                 "PAYMENT_METHOD_REQUIRED")
    life.set_card("acme")
    bought = life.payments.PurchaseCredits(request, timeout=RPC_TIMEOUT_S)
    assert bought.credit_balance_micros == 25_000_000
    assert bought.invoice.kind == p.INVOICE_KIND_CREDIT_PURCHASE and bought.invoice.status == p.INVOICE_STATUS_PAID
    assert bought.charge.kind == p.CHARGE_KIND_CREDIT_PURCHASE and bought.charge.invoice_id == bought.invoice.invoice_id
    retry = life.payments.PurchaseCredits(request, timeout=RPC_TIMEOUT_S)
    assert retry.charge == bought.charge and retry.invoice == bought.invoice
    assert life.get("acme").credit_balance_micros == 25_000_000 and len(life.charges("acme")) == 1
    other = p.PurchaseCreditsRequest(account_id="acme", amount_micros=2_000_000, idempotency_key="buy-1")
    life.refused(lambda: life.payments.PurchaseCredits(other, timeout=RPC_TIMEOUT_S), grpc.StatusCode.ALREADY_EXISTS,
                 "IDEMPOTENCY_KEY_REUSED")
    # Cards are charged whole cents, from $1.00: sub-cent and tiny amounts are refused too.
    for amount in (0, -5, 1_000_000_000_001, 5, 999_999, 1_000_001, 12_345_678):
        bad = p.PurchaseCreditsRequest(account_id="acme", amount_micros=amount, idempotency_key=f"bad{amount}")
        life.refused(lambda: life.payments.PurchaseCredits(bad, timeout=RPC_TIMEOUT_S), grpc.StatusCode.INVALID_ARGUMENT,
                     "INVALID_AMOUNT")
    assert life.get("acme").credit_balance_micros == 25_000_000


def test_a_declined_purchase_credits_nothing(life):
    a, p = life.a, life.p
    life.create("acme", plan=a.PLAN_FREE)
    life.set_card("acme", DECLINED_CARD)
    request = p.PurchaseCreditsRequest(account_id="acme", amount_micros=5_000_000, idempotency_key="buy-1")
    error = life.refused(lambda: life.payments.PurchaseCredits(request, timeout=RPC_TIMEOUT_S), FAILED_PRECONDITION,
                         "PAYMENT_DECLINED")
    assert error_info(life.pb, error).metadata["failure_reason"] == "CARD_DECLINED"
    # What to do next (session 29: a processing error said "retry", which under the key replays it).
    assert "a retry under this idempotency key gets this answer again: try a new key" in error.details(), error.details()
    assert life.get("acme").credit_balance_micros == 0 and life.invoices("acme") == []
    [charge] = life.charges("acme")
    assert charge.status == p.CHARGE_STATUS_FAILED and charge.invoice_id == ""
    # The key stays declined: a retry does not charge again.
    life.refused(lambda: life.payments.PurchaseCredits(request, timeout=RPC_TIMEOUT_S), FAILED_PRECONDITION, "PAYMENT_DECLINED")
    assert len(life.charges("acme")) == 1


def test_a_purchase_may_be_paid_with_a_card_given_with_it(life):
    """A card on file that declines, its replacement waiting for the next
    cycle (the docs: card updates take effect then): a purchase paid with a
    card given with it goes through, and that card does not go on file.
    Before session 29 such an account could buy no credits until the cycle."""
    a, p = life.a, life.p
    life.create("acme", plan=a.PLAN_FREE)
    life.set_card("acme", DECLINED_CARD)
    assert not life.set_card("acme", GOOD_CARD).applied_now  # the replacement waits
    declined = p.PurchaseCreditsRequest(account_id="acme", amount_micros=5_000_000, idempotency_key="buy-1")
    life.refused(lambda: life.payments.PurchaseCredits(declined, timeout=RPC_TIMEOUT_S), FAILED_PRECONDITION, "PAYMENT_DECLINED")
    request = p.PurchaseCreditsRequest(account_id="acme", amount_micros=5_000_000, idempotency_key="buy-2",
                                       payment_method=life.card(GOOD_CARD))
    bought = life.payments.PurchaseCredits(request, timeout=RPC_TIMEOUT_S)
    assert bought.charge.status == p.CHARGE_STATUS_SUCCEEDED and bought.charge.payment_method_label.endswith("4242")
    assert bought.charge.payment_method_id == ""  # on file nowhere: its label says which card paid
    assert bought.credit_balance_micros == 5_000_000 and bought.invoice.status == p.INVOICE_STATUS_PAID
    method = life.payments.GetPaymentMethod(p.GetPaymentMethodRequest(account_id="acme"), timeout=RPC_TIMEOUT_S)
    assert method.current.card.last4 == "0002" and method.pending.card.last4 == "4242"  # nothing moved on file
    # Its retry is answered from the key; the key with the card on file, or another card, is another request.
    assert life.payments.PurchaseCredits(request, timeout=RPC_TIMEOUT_S).charge == bought.charge
    for changed in (p.PurchaseCreditsRequest(account_id="acme", amount_micros=5_000_000, idempotency_key="buy-2"),
                    p.PurchaseCreditsRequest(account_id="acme", amount_micros=5_000_000, idempotency_key="buy-2",
                                             payment_method=life.card("5555 5555 5555 4444"))):
        life.refused(lambda: life.payments.PurchaseCredits(changed, timeout=RPC_TIMEOUT_S), grpc.StatusCode.ALREADY_EXISTS,
                     "IDEMPOTENCY_KEY_REUSED")
    # A bad card given with it is refused as such, before anything is charged.
    bad = p.PurchaseCreditsRequest(account_id="acme", amount_micros=5_000_000, idempotency_key="buy-3",
                                   payment_method=life.card("1234"))
    life.refused(lambda: life.payments.PurchaseCredits(bad, timeout=RPC_TIMEOUT_S), grpc.StatusCode.INVALID_ARGUMENT,
                 "INVALID_CARD_NUMBER")
    assert life.get("acme").credit_balance_micros == 5_000_000 and len(life.charges("acme")) == 2


def test_a_pay_invoice_key_retried_with_another_card_is_a_reused_key(life):
    """Session 29: the retry was answered with the first attempt's outcome
    (a decline for a card never tried; "paid" for a declining card)."""
    p = life.p
    invoice = life.past_due_pro("acme", DECLINED_CARD)

    def pay(key, card=None):
        method = life.card(card) if card else None
        return life.payments.PayInvoice(p.PayInvoiceRequest(account_id="acme", invoice_id=invoice.invoice_id,
                                                             payment_method=method, idempotency_key=key), timeout=RPC_TIMEOUT_S)
    life.refused(lambda: pay("k1"), FAILED_PRECONDITION, "PAYMENT_DECLINED")
    life.refused(lambda: pay("k1", GOOD_CARD), grpc.StatusCode.ALREADY_EXISTS, "IDEMPOTENCY_KEY_REUSED")
    paid = pay("k2", GOOD_CARD)
    assert paid.invoice.status == p.INVOICE_STATUS_PAID
    assert pay("k2", GOOD_CARD).charge == paid.charge
    life.refused(lambda: pay("k2", DECLINED_CARD), grpc.StatusCode.ALREADY_EXISTS, "IDEMPOTENCY_KEY_REUSED")
    life.refused(lambda: pay("k2"), grpc.StatusCode.ALREADY_EXISTS, "IDEMPOTENCY_KEY_REUSED")


def test_grants_are_recorded_apart_from_purchases(life):
    a, p = life.a, life.p
    life.create("acme", plan=a.PLAN_FREE)
    life.admin.GrantCredits(life.ad.GrantCreditsRequest(account_id="acme", amount_micros=3_000_000, reason="promo",
                                                        idempotency_key="g1"), timeout=RPC_TIMEOUT_S)
    assert life.get("acme").credit_balance_micros == 3_000_000
    assert life.invoices("acme") == [] and life.charges("acme") == []
    audit = life.admin.ListAuditLog(life.ad.ListAuditLogRequest(account_id="acme"), timeout=RPC_TIMEOUT_S).entries
    assert "GrantCredits" in [e.action for e in audit]


# --------------------------------------------------------------------------
# Workspaces, plans table, numbering, PDFs, limits


def test_free_allows_one_workspace(life):
    a = life.a
    life.create("acme", plan=a.PLAN_FREE)
    life.admin.GrantCredits(life.ad.GrantCreditsRequest(account_id="acme", amount_micros=1_000_000, idempotency_key="g"),
                            timeout=RPC_TIMEOUT_S)
    life.debit("acme", "w1", workspace="ws-a")
    error = life.refused(lambda: life.debit("acme", "w2", workspace="ws-b"), FAILED_PRECONDITION, "WORKSPACE_LIMIT")
    assert "ws-b" in error.details()
    quote = life.quote("acme", workspace="ws-b")
    assert not quote.would_accept and quote.refusal.reason == "WORKSPACE_LIMIT"
    assert list(life.get("acme").workspace_ids) == ["ws-a"]


def test_list_plans_is_the_comparison_table(life):
    a = life.a
    life.create("acme", plan=a.PLAN_FREE)
    plans = life.accounts.ListPlans(a.ListPlansRequest(account_id="acme"), timeout=RPC_TIMEOUT_S).plans
    assert [p.plan for p in plans] == [a.PLAN_FREE, a.PLAN_PRO, a.PLAN_ENTERPRISE]
    assert [p.current for p in plans] == [True, False, False]
    assert [p.price_label for p in plans] == ["$0", "$49.00/month", "Contact sales"]
    assert [(p.run_quota, p.max_workspaces) for p in plans] == [(200, 1), (20_000, 0), (0, 0)]
    assert [p.contact_sales for p in plans] == [False, False, True]
    labels = [[f.label for f in p.features] for p in plans]
    assert labels[0] == labels[1] == labels[2] and labels[0][:5] == ["Price", "Workspaces", "Run quota", "Support", "Integrations"]
    assert plans[1].features[2].value == "20,000 runs/month"


def test_invoice_numbers_have_no_gaps_across_accounts(life):
    a, p = life.a, life.p
    for account in ("a1", "a2", "a3"):
        life.create(account, plan=a.PLAN_FREE)
        life.set_card(account, DECLINED_CARD if account == "a2" else GOOD_CARD)
    for index, account in enumerate(("a1", "a2", "a3", "a1")):
        request = p.PurchaseCreditsRequest(account_id=account, amount_micros=1_000_000 + index * 10_000, idempotency_key=f"b{index}")
        try:
            life.payments.PurchaseCredits(request, timeout=RPC_TIMEOUT_S)
        except grpc.RpcError:
            assert account == "a2"
    numbers = sorted(i.sequence for account in ("a1", "a2", "a3") for i in life.invoices(account))
    assert numbers == [1, 2, 3]
    assert [i.number for i in life.invoices("a1")] == ["INV-000003", "INV-000001"]


def test_invoice_pdf_opens_in_poppler_with_number_lines_and_total(life, tmp_path):
    a, p = life.a, life.p
    assert shutil.which("pdftotext") and shutil.which("pdftoppm"), "poppler-utils is required (scripts/install-deps.sh)"
    account = life.create("acme", plan=a.PLAN_PRO)
    life.set_card("acme")
    overage = life.debit("acme", "r1", tokens=1_000_000).overage_micros
    life.advance(to=account.current_period_end_unix_seconds)
    [invoice] = life.invoices("acme")
    answer = life.payments.GetInvoicePdf(p.GetInvoicePdfRequest(account_id="acme", invoice_id=invoice.invoice_id),
                                         timeout=RPC_TIMEOUT_S)
    assert answer.content_type == "application/pdf" and answer.filename == f"{invoice.number}.pdf"
    assert answer.pdf.startswith(b"%PDF-")
    path = tmp_path / answer.filename
    path.write_bytes(answer.pdf)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, timeout=30, check=True).stdout
    for expected in (invoice.number, "PAID", "acme Inc.", "billing@acme.example", *[l.description for l in invoice.line_items]):
        assert expected in text, f"{expected!r} not in:\n{text}"
    # A renewal's period is the one that closed (its usage); its plan line
    # pays for the next period: labelled so, not as a second bill for the month.
    # (The value wraps in its column: "2026-01-01 to" / "2026-02-01".)
    closed = rf"Period closed\s+{day(invoice.period_start_unix_seconds)} to\s+{day(invoice.period_end_unix_seconds)}"
    assert re.search(closed, re.sub(r"\s+", " ", text)), text
    assert day(invoice.line_items[0].period_start_unix_seconds) == day(invoice.period_end_unix_seconds)
    total = f"${(PRO + overage) // 1_000_000:,}.{(PRO + overage) % 1_000_000:06d}".rstrip("0")
    total = total if len(total.split(".")[1]) >= 2 else total + "0" * (2 - len(total.split(".")[1]))
    assert total in text, f"total {total} not in:\n{text}"
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(path), str(tmp_path / "page")],
                   capture_output=True, timeout=30, check=True)
    pages = list(tmp_path.glob("page*.png"))
    assert pages and pages[0].stat().st_size > 1000
    life.refused(lambda: life.payments.GetInvoicePdf(p.GetInvoicePdfRequest(account_id="acme", invoice_id="in_999"),
                                                     timeout=RPC_TIMEOUT_S), grpc.StatusCode.NOT_FOUND, "INVOICE_NOT_FOUND")
    # Under the display name, the account id; without one, the id once
    # (session 28: "plainco" printed twice, as name and as address line).
    assert re.search(r"^\s*Agent Platform, Inc\.\s+acme Inc\.\s", text, re.M) and re.search(r"Street\s+acme\s", text), text
    life.accounts.CreateAccount(a.CreateAccountRequest(account_id="plainco", initial_plan=a.PLAN_PRO), timeout=RPC_TIMEOUT_S)
    life.set_card("plainco")
    life.advance(to=life.get("plainco").current_period_end_unix_seconds)
    [plain] = life.invoices("plainco")
    pdf = life.payments.GetInvoicePdf(p.GetInvoicePdfRequest(account_id="plainco", invoice_id=plain.invoice_id),
                                      timeout=RPC_TIMEOUT_S).pdf
    text = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, timeout=30, check=True).stdout.decode()
    assert text.count("plainco") == 1, text


def test_card_numbers_never_reach_storage_or_logs(life):
    a = life.a
    life.create("acme", plan=a.PLAN_FREE)
    life.set_card("acme", "4000 0000 0000 0002")
    life.set_card("acme", "5555555555554444")
    life.served.terminate()
    assert life.served.wait_exit(10) == 0
    for path in life.served.db_path.parent.iterdir():
        if path.is_file():
            data = path.read_bytes()
            for number in (b"4000000000000002", b"5555555555554444", b"4000 0000 0000 0002"):
                assert number not in data, f"{number} found in {path}"


def test_bad_payment_methods_are_refused_and_change_nothing(life):
    a, p = life.a, life.p
    life.create("acme", plan=a.PLAN_FREE)
    cases = [
        (life.card("4242424242424241"), "INVALID_CARD_NUMBER"),
        (life.card(year=2001), "CARD_EXPIRED"),
        (p.PaymentMethodInput(card=p.CardInput(number=GOOD_CARD, exp_month=13, exp_year=2099)), "INVALID_EXPIRY"),
        (p.PaymentMethodInput(bank_account=p.BankAccountInput(bank_name="B", routing_number="12", account_number="1234")),
         "INVALID_ROUTING_NUMBER"),
        (p.PaymentMethodInput(bank_account=p.BankAccountInput(bank_name="B", routing_number="110000000",
                                                              account_number="12")), "INVALID_ACCOUNT_NUMBER"),
        (p.PaymentMethodInput(bank_account=p.BankAccountInput(bank_name="", routing_number="110000000",
                                                              account_number="000123456789")), "INVALID_BANK_NAME"),
        # (Session 27: INVALID_TOKEN, the reason of a bad user JWT, UNAUTHENTICATED.)
        (p.PaymentMethodInput(gateway_token="pm_abc"), "INVALID_GATEWAY_TOKEN"),
        (p.PaymentMethodInput(), "MISSING_FIELD"),
    ]
    for method, reason in cases:
        life.refused(lambda: life.payments.SetPaymentMethod(p.SetPaymentMethodRequest(account_id="acme", payment_method=method),
                                                            timeout=RPC_TIMEOUT_S), grpc.StatusCode.INVALID_ARGUMENT, reason)
    assert not life.get("acme").has_payment_method
    bank = p.PaymentMethodInput(bank_account=p.BankAccountInput(bank_name="First Test Bank", routing_number="110000000",
                                                               account_number="000123456789"))
    answer = life.payments.SetPaymentMethod(p.SetPaymentMethodRequest(account_id="acme", payment_method=bank), timeout=RPC_TIMEOUT_S)
    assert answer.current.bank_account.last4 == "6789" and answer.current.type == p.PAYMENT_METHOD_TYPE_BANK_ACCOUNT


def test_clock_moves_forward_only_and_is_bounded(life):
    now = life.now()
    back = life.refused(lambda: life.advance(to=now - 1), grpc.StatusCode.INVALID_ARGUMENT, "CLOCK_BACKWARDS")
    assert error_info(life.pb, back).metadata["field"] == "to_unix_seconds"
    life.refused(lambda: life.advance(seconds=-1), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD")
    far = life.refused(lambda: life.advance(seconds=11 * 366 * DAY), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD")
    assert error_info(life.pb, far).metadata["field"] == "seconds"
    # A refusal names the field the caller set.
    far = life.refused(lambda: life.advance(to=now + 11 * 366 * DAY), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD")
    assert error_info(life.pb, far).metadata["field"] == "to_unix_seconds"
    assert life.now() == now


def test_advance_clock_without_test_clock_is_failed_precondition(pb, server):
    s = server()
    admin = pb.admin_pb2_grpc.AdminStub(s.authorized_channel())
    with pytest.raises(grpc.RpcError) as caught:
        admin.AdvanceClock(pb.admin_pb2.AdvanceClockRequest(seconds=60), timeout=RPC_TIMEOUT_S)
    assert caught.value.code() == FAILED_PRECONDITION
    assert error_info(pb, caught.value).reason == "TEST_CLOCK_DISABLED"


def test_a_restart_keeps_everything_and_processes_nothing_twice(pb, server, verify):
    s = server(args=("--test-clock",))
    life = Lifecycle(pb, s)
    a = life.a
    account = life.create("acme", plan=a.PLAN_PRO)
    life.set_card("acme")
    life.advance(to=account.current_period_end_unix_seconds + 10)
    before = (life.get("acme"), life.invoices("acme"), life.charges("acme"), life.now())
    s.terminate()
    assert s.wait_exit(10) == 0
    # Served on the real clock, the moved-ahead database would run time
    # backwards (a trial's days growing again): refused, nothing changed.
    refused = subprocess.run([str(billing_binary()), "serve", "--listen", "127.0.0.1:0", "--db", str(s.db_path)],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert 0 < refused.returncode < 128, refused.stdout + refused.stderr
    assert "serve it with --test-clock" in refused.stderr, refused.stderr
    again = server(args=("--test-clock",), db=s.db_path)
    again.credentials_path = s.credentials_path
    life = Lifecycle(pb, again)
    after = (life.get("acme"), life.invoices("acme"), life.charges("acme"), life.now())
    assert after[1:3] == before[1:3] and after[0] == before[0]
    assert after[3] >= before[3]
    verify(again.db_path)


def test_plan_terms_come_from_the_plans_file_and_are_journaled(pb, server, verify, tmp_path):
    """`serve --plans`: the comparison table and the prices charged follow
    the file; changed terms are journaled, so a restart on other terms keeps
    the invoices of the past as they were."""
    import json
    from conftest import ROOT
    terms = json.loads((ROOT / "config" / "plans.json").read_text())
    terms["plans"]["pro"]["monthly_price_micros"] = 99_000_000
    terms["plans"]["free"]["run_quota"] = 2
    dearer = tmp_path / "plans.json"
    dearer.write_text(json.dumps(terms))
    s = server(args=("--test-clock", "--plans", str(dearer)))
    life = Lifecycle(pb, s)
    a, p = life.a, life.p
    plans = life.accounts.ListPlans(a.ListPlansRequest(), timeout=RPC_TIMEOUT_S).plans
    assert [x.monthly_price_micros for x in plans] == [0, 99_000_000, 0]
    assert plans[0].run_quota == 2 and plans[1].price_label == "$99.00/month"
    account = life.create("acme", plan=a.PLAN_PRO)
    life.set_card("acme")
    life.advance(to=account.current_period_end_unix_seconds)
    [invoice] = life.invoices("acme")
    assert invoice.total_micros == 99_000_000
    audit = life.admin.ListAuditLog(life.ad.ListAuditLogRequest(), timeout=RPC_TIMEOUT_S).entries
    # The terms and the grace (`--grace-days`, default 7) are journaled at the first start.
    [configured] = [e for e in audit if e.action == "ConfigurePlans"]
    assert configured.details["pro_monthly_price_micros"] == "99000000"
    assert configured.details["grace_seconds"] == str(7 * DAY)
    s.terminate()
    assert s.wait_exit(10) == 0

    # The shipped file ($49) and a one-day grace: journaled for every account.
    again = server(args=("--test-clock", "--grace-days", "1"), db=s.db_path)
    again.credentials_path = s.credentials_path
    life = Lifecycle(pb, again)
    plans = life.accounts.ListPlans(a.ListPlansRequest(), timeout=RPC_TIMEOUT_S).plans
    assert plans[1].monthly_price_micros == PRO and plans[0].run_quota == 200
    audit = life.admin.ListAuditLog(life.ad.ListAuditLogRequest(), timeout=RPC_TIMEOUT_S).entries
    newest = [e for e in audit if e.action == "ConfigurePlans"][0]
    assert newest.details["pro_monthly_price_micros"] == str(PRO) and newest.details["grace_seconds"] == str(DAY)
    assert life.invoices("acme") == [invoice]
    life.advance(to=life.get("acme").current_period_end_unix_seconds)
    assert [i.total_micros for i in life.invoices("acme")] == [PRO, 99_000_000]
    verify(again.db_path)


def test_a_trial_of_a_plan_costing_nothing_goes_on_at_its_end_without_a_card(pb, server, verify, tmp_path):
    """A plans file with `trial_plan: "free"` (Free at $0): the trial's end
    has nothing to charge a card for, so the account goes on on Free,
    Active, runs not paused (session 27: it paused, "add a payment method to
    continue on Pro"); a restart replays it so."""
    import json
    from conftest import ROOT
    terms = json.loads((ROOT / "config" / "plans.json").read_text())
    terms["trial_plan"] = "free"
    assert terms["plans"]["free"]["monthly_price_micros"] == 0
    plans = tmp_path / "plans.json"
    plans.write_text(json.dumps(terms))
    s = server(args=("--test-clock", "--plans", str(plans), "--trial-credit-micros", "10000000"))
    life = Lifecycle(pb, s)
    a = life.a
    account = life.create("acme")
    assert account.status == a.ACCOUNT_STATUS_TRIAL and account.plan == a.PLAN_FREE
    [countdown] = account.banners
    assert countdown.link_text == "", "a trial that goes on without a card asks for none"
    life.debit("acme", "before-end")
    moved = life.advance(to=account.trial_ends_unix_seconds)
    [ended] = [t for t in moved.transitions if t.account_id == "acme" and t.kind == "TRIAL_ENDED"]
    assert ended.description == "the trial ended; the subscription starts", ended
    account = life.get("acme")
    assert (account.status, account.plan, account.paused) == (a.ACCOUNT_STATUS_ACTIVE, a.PLAN_FREE, False), account
    assert life.debit("acme", "after-end").total_micros > 0  # a new run, from the trial's credits
    assert life.invoices("acme") == []
    s.terminate()
    assert s.wait_exit(10) == 0
    again = server(args=("--test-clock", "--plans", str(plans), "--trial-credit-micros", "10000000"), db=s.db_path)
    again.credentials_path = s.credentials_path
    replayed = Lifecycle(pb, again).get("acme")
    assert (replayed.status, replayed.plan, replayed.paused) == (a.ACCOUNT_STATUS_ACTIVE, a.PLAN_FREE, False), replayed
    verify(again.db_path)


def test_a_paused_trial_of_a_priced_free_is_told_to_add_a_card_for_that_plan(pb, server, tmp_path):
    """A plans file with `trial_plan: "free"`, Free at $5 and named
    "Starter": the trial's end without a card pauses it, and the pause
    message, the banner and a refused Debit name the plan as the file does,
    without "or switch to Free" (session 28: "continue on Pro, or switch to
    Free", for an account already on Free, whose card would be charged for
    Starter)."""
    import json
    from conftest import ROOT
    terms = json.loads((ROOT / "config" / "plans.json").read_text())
    terms["trial_plan"] = "free"
    terms["plans"]["free"]["monthly_price_micros"] = 5_000_000
    terms["plans"]["free"]["display_name"] = "Starter"
    plans = tmp_path / "plans.json"
    plans.write_text(json.dumps(terms))
    s = server(args=("--test-clock", "--plans", str(plans)))
    life = Lifecycle(pb, s)
    account = life.create("acme")
    life.advance(to=account.trial_ends_unix_seconds)
    account = life.get("acme")
    remedy = "add a payment method to continue on Starter"
    assert account.paused and account.pause_message == f"New runs are paused: {remedy}.", account
    assert account.banners[0].message == f"Your trial has ended and new runs are paused: {remedy}.", account.banners
    with pytest.raises(grpc.RpcError) as refused:
        life.debit("acme", "after-end")
    assert refused.value.details().endswith(f"new runs are paused: {remedy}"), refused.value.details()


def test_usage_up_to_now_includes_the_current_second_at_midnight(life):
    """GetUsage's `to_unix_seconds` 0 means now, the current second
    included: on a clock at exactly 00:00 UTC, a debit made then counts
    (session 28's review: "now" was exclusive, and the day it began was
    left out until the clock moved)."""
    m = life.m
    account = life.create("acme", plan=life.a.PLAN_PRO)
    life.set_card("acme")
    midnight = (account.created_unix_seconds // 86_400 + 2) * 86_400
    life.advance(to=midnight)
    charged = life.debit("acme", "at-midnight").total_micros
    for since in (midnight - 86_400, midnight):
        usage = life.metering.GetUsage(m.GetUsageRequest(account_id="acme", from_unix_seconds=since), timeout=RPC_TIMEOUT_S)
        assert usage.total_micros == charged and usage.to_unix_seconds == midnight + 86_400, (since, usage)


def test_a_bad_plans_file_stops_the_server_with_the_reason(tmp_path):
    import json
    import subprocess as sp
    from conftest import ROOT, billing_binary
    terms = json.loads((ROOT / "config" / "plans.json").read_text())
    terms["plans"]["pro"]["run_qouta"] = 5
    bad = tmp_path / "plans.json"
    bad.write_text(json.dumps(terms))
    result = sp.run([str(billing_binary()), "serve", "--listen", "127.0.0.1:0", "--db", str(tmp_path / "x.sqlite"),
                     "--plans", str(bad), "--no-demo"], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert result.returncode != 0
    assert "unknown field plans.pro.run_qouta" in result.stderr + result.stdout


def test_the_seller_on_invoices_comes_from_the_seller_file(pb, server, tmp_path):
    """`serve --seller`: the seller printed on invoice PDFs (session 27: a
    placeholder no option could change); a bad file stops the start with
    the reason, before the database is touched."""
    import json
    import subprocess as sp
    from conftest import ROOT, billing_binary
    seller = tmp_path / "seller.json"
    seller.write_text(json.dumps({"name": "Umbrella Billing GmbH", "lines": ["Hauptstrasse 1", "10115 Berlin"]}))
    s = server(args=("--seller", str(seller)))
    life = Lifecycle(pb, s)
    p = life.p
    life.create("acme")
    life.set_card("acme")
    life.payments.PurchaseCredits(p.PurchaseCreditsRequest(account_id="acme", amount_micros=5_000_000, idempotency_key="b"),
                                  timeout=RPC_TIMEOUT_S)
    [invoice] = life.invoices("acme")
    pdf = life.payments.GetInvoicePdf(p.GetInvoicePdfRequest(account_id="acme", invoice_id=invoice.invoice_id),
                                      timeout=RPC_TIMEOUT_S).pdf
    text = sp.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, timeout=30, check=True).stdout.decode()
    assert "Umbrella Billing GmbH" in text and "10115 Berlin" in text and "Agent Platform" not in text, text
    seller.write_text(json.dumps({"name": "X", "adress": ["typo"]}))
    result = sp.run([str(billing_binary()), "serve", "--listen", "127.0.0.1:0", "--db", str(tmp_path / "x.sqlite"),
                     "--seller", str(seller), "--no-demo"], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert result.returncode != 0 and 'unknown key "adress"' in result.stderr + result.stdout, result.stderr
    assert not (tmp_path / "x.sqlite").exists()


def test_charges_and_invoices_page_newest_first_without_repeats_while_new_ones_arrive(life):
    p = life.p
    life.create("acme")
    life.set_card("acme")

    def buy(n):
        return life.payments.PurchaseCredits(p.PurchaseCreditsRequest(account_id="acme", amount_micros=1_000_000 + n * 10_000,
                                                                      idempotency_key=f"buy-{n}"), timeout=RPC_TIMEOUT_S)
    for n in range(5):
        buy(n)
    for list_page, field in ((lambda token: life.payments.ListCharges(p.ListChargesRequest(
                                  account_id="acme", page_size=2, page_token=token), timeout=RPC_TIMEOUT_S), "charges"),
                             (lambda token: life.payments.ListInvoices(p.ListInvoicesRequest(
                                  account_id="acme", page_size=2, page_token=token), timeout=RPC_TIMEOUT_S), "invoices")):
        before = [x.amount_micros if field == "charges" else x.total_micros for x in getattr(list_page(""), field)]
        seen, token = [], ""
        for page in range(10):
            answer = list_page(token)
            seen += [x.amount_micros if field == "charges" else x.total_micros for x in getattr(answer, field)]
            if page == 0:
                buy(100 + len(seen))  # a newer one arrives while the client pages
            token = answer.next_page_token
            if not token:
                break
        assert before == seen[:2]
        assert len(seen) == len(set(seen)), f"{field} repeated: {seen}"
        originals = [1_000_000 + n * 10_000 for n in range(5)]
        assert [a for a in seen if a in originals] == list(reversed(originals)), seen


def test_audit_log_pages_end_with_an_empty_token(life):
    """ListAuditLog: `next_page_token` is empty on the last page, also when
    that page is full (session 27: a full last page answered a token that
    led to an empty page)."""
    life.create("acme", plan=life.a.PLAN_FREE)
    for i in range(3):
        life.admin.GrantCredits(life.ad.GrantCreditsRequest(account_id="acme", amount_micros=1_000_000, reason="t",
                                                           idempotency_key=f"g-{i}"), timeout=RPC_TIMEOUT_S)
    def page(size, token=""):
        return life.admin.ListAuditLog(life.ad.ListAuditLogRequest(account_id="acme", page_size=size, page_token=token),
                                       timeout=RPC_TIMEOUT_S)
    everything = page(1000)
    n = len(everything.entries)
    assert n >= 4 and everything.next_page_token == ""
    assert page(n).next_page_token == "", "a full last page named a next page"
    first = page(n - 1)
    assert len(first.entries) == n - 1 and first.next_page_token != ""
    rest = page(n - 1, first.next_page_token)
    assert list(first.entries) + list(rest.entries) == list(everything.entries) and rest.next_page_token == ""


def test_grants_and_contract_terms_out_of_range_are_refused_and_change_nothing(life):
    """Bad input changes nothing (session 27, a review): a grant over
    $1,000,000 (any Int64 was granted — a typo left every later grant
    refused as an overflow), a contract's dates outside 1970-9999 or ending
    before they start (any Int64 was kept), a custom line without a
    description (refused as "amounts must be >= 0")."""
    a = life.a
    life.create("acme", plan=a.PLAN_PRO)
    before = life.get("acme")
    grant = life.refused(lambda: life.admin.GrantCredits(life.ad.GrantCreditsRequest(
        account_id="acme", amount_micros=1_000_000_000_001, reason="typo"), timeout=RPC_TIMEOUT_S),
        grpc.StatusCode.INVALID_ARGUMENT, "INVALID_AMOUNT")
    assert error_info(life.pb, grant).metadata["field"] == "amount_micros"
    terms = dict(period_price_micros=1_000_000_000, usage_rate_basis_points=10_000)
    for bad, field, reason in [
            (dict(start_unix_seconds=-1), "contract.start_unix_seconds", "INVALID_FIELD"),
            (dict(start_unix_seconds=2_000_000_000, end_unix_seconds=1_900_000_000), "contract.end_unix_seconds", "INVALID_FIELD"),
            (dict(end_unix_seconds=253_402_300_801), "contract.end_unix_seconds", "INVALID_FIELD"),
            (dict(custom_invoice_lines=[a.CustomInvoiceLine(description=" ", amount_micros=10_000)]),
             "contract.custom_invoice_lines[0].description", "MISSING_FIELD")]:
        contract = a.EnterpriseContract(**terms, **bad)
        refused = life.refused(lambda: life.admin.SetEnterpriseContract(
            life.ad.SetEnterpriseContractRequest(account_id="acme", contract=contract), timeout=RPC_TIMEOUT_S),
            grpc.StatusCode.INVALID_ARGUMENT, reason)
        assert error_info(life.pb, refused).metadata["field"] == field, bad
    assert life.get("acme") == before and life.invoices("acme") == []
    ok = life.admin.GrantCredits(life.ad.GrantCreditsRequest(account_id="acme", amount_micros=1_000_000_000_000,
                                                            reason="the largest"), timeout=RPC_TIMEOUT_S)
    assert ok.credit_balance_micros == before.credit_balance_micros + 1_000_000_000_000
