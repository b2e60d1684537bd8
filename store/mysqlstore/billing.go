package mysqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/smsgw/smsgw"
)

// The billing ledger (migrations/0004_billing.sql). Each step runs in one
// transaction that locks the customer's balances row, looks for the step's
// movement, and only when there is none inserts it and moves the balance by
// exactly it. Retries of a step, concurrent or after a crash, and the same
// step from two replicas therefore count once: the second finds the first's
// movement (its row lock makes it wait for the first to commit) and returns
// it with New false. The lock serialises one customer's steps; customers do
// not wait for each other.

// Reserve implements smsgw.Ledger.
func (s *Store) Reserve(ctx context.Context, customerID, currency, messageID string, amount int64, segments int, at time.Time) (smsgw.Movement, error) {
	m := smsgw.Movement{CustomerID: customerID, Currency: currency, Key: messageID, Step: smsgw.StepReserve,
		Kind: smsgw.MoveReserve, Reserved: amount, Segments: segments, At: at.UTC()}
	var out smsgw.Movement
	err := s.withRetry(ctx, func() (err error) {
		out, err = s.apply(ctx, m, func(b smsgw.Balance, _ *sql.Tx) (smsgw.Movement, error) {
			if b.Available() < amount {
				return smsgw.Movement{}, smsgw.InsufficientBalance(currency, amount, b.Available())
			}
			return m, nil
		})
		return err
	}, "reserve for message "+messageID)
	return out, unwrapDomain(err)
}

// CloseMessage implements smsgw.Ledger. It lifts whatever the message's
// reservation held (nothing for a postpaid message) and, to settle, takes
// charge from the balance.
func (s *Store) CloseMessage(ctx context.Context, customerID, currency, messageID, kind string, charge int64, segments int, at time.Time) (smsgw.Movement, error) {
	if kind != smsgw.MoveSettle && kind != smsgw.MoveRelease {
		return smsgw.Movement{}, smsgw.Errorf(smsgw.EINVALID, "close message %s: kind %q is neither settle nor release", messageID, kind)
	}
	m := smsgw.Movement{CustomerID: customerID, Currency: currency, Key: messageID, Step: smsgw.StepClose,
		Kind: kind, Segments: segments, At: at.UTC()}
	if kind == smsgw.MoveSettle {
		m.Amount = -charge
	}
	var out smsgw.Movement
	err := s.withRetry(ctx, func() (err error) {
		out, err = s.apply(ctx, m, func(_ smsgw.Balance, tx *sql.Tx) (smsgw.Movement, error) {
			var held int64
			err := tx.QueryRowContext(ctx, "SELECT reserved_micros FROM billing_ledger WHERE entry_key = ? AND step = ?",
				messageID, smsgw.StepReserve).Scan(&held)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return smsgw.Movement{}, err
			}
			m.Reserved = -held
			return m, nil
		})
		return err
	}, "close message "+messageID)
	return out, unwrapDomain(err)
}

// TopUp implements smsgw.Ledger.
func (s *Store) TopUp(ctx context.Context, customerID, currency, reference string, amount int64, at time.Time) (smsgw.Movement, error) {
	if amount <= 0 {
		return smsgw.Movement{}, smsgw.Errorf(smsgw.EINVALID, "a top-up must be a positive amount")
	}
	if reference == "" {
		return smsgw.Movement{}, smsgw.Errorf(smsgw.EINVALID, "a top-up needs a reference (an invoice or payment ID), so that repeating it adds nothing")
	}
	m := smsgw.Movement{CustomerID: customerID, Currency: currency, Key: "topup:" + customerID + ":" + reference,
		Step: smsgw.StepTopUp, Kind: smsgw.MoveTopUp, Amount: amount, At: at.UTC()}
	if len(m.Key) > 160 {
		return smsgw.Movement{}, smsgw.Errorf(smsgw.EINVALID, "the top-up reference is too long")
	}
	var out smsgw.Movement
	err := s.withRetry(ctx, func() (err error) {
		out, err = s.apply(ctx, m, func(smsgw.Balance, *sql.Tx) (smsgw.Movement, error) { return m, nil })
		return err
	}, "top up "+customerID)
	return out, unwrapDomain(err)
}

// Balance implements smsgw.Ledger.
func (s *Store) Balance(ctx context.Context, customerID, currency string) (smsgw.Balance, error) {
	b := smsgw.Balance{CustomerID: customerID, Currency: currency}
	err := s.db.QueryRowContext(ctx, `SELECT balance_micros, reserved_micros, updated_at FROM billing_balances
		WHERE customer_id = ? AND currency = ?`, customerID, currency).Scan(&b.Balance, &b.Reserved, &b.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return b, nil
	}
	if err != nil {
		return smsgw.Balance{}, fmt.Errorf("mysqlstore: balance of %s: %w", customerID, wrap(err))
	}
	return b, nil
}

// apply runs one ledger step: lock the balance, return the step's movement
// if it exists, else let decide make it (or refuse it) and apply it.
func (s *Store) apply(ctx context.Context, m smsgw.Movement, decide func(smsgw.Balance, *sql.Tx) (smsgw.Movement, error)) (smsgw.Movement, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return smsgw.Movement{}, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	// The balances row exists before it is locked, so that two first steps
	// of a customer wait for each other on it.
	if _, err := tx.ExecContext(ctx, `INSERT INTO billing_balances (customer_id, currency, updated_at) VALUES (?, ?, ?)
		ON DUPLICATE KEY UPDATE customer_id = customer_id`, m.CustomerID, m.Currency, m.At); err != nil {
		return smsgw.Movement{}, err
	}
	b := smsgw.Balance{CustomerID: m.CustomerID, Currency: m.Currency}
	if err := tx.QueryRowContext(ctx, `SELECT balance_micros, reserved_micros, updated_at FROM billing_balances
		WHERE customer_id = ? AND currency = ? FOR UPDATE`, m.CustomerID, m.Currency).Scan(&b.Balance, &b.Reserved, &b.UpdatedAt); err != nil {
		return smsgw.Movement{}, err
	}
	prev, found, err := movement(ctx, tx, m.Key, m.Step)
	if err != nil || found {
		return prev, err
	}
	m, err = decide(b, tx)
	if err != nil {
		return smsgw.Movement{}, err
	}
	res, err := tx.ExecContext(ctx, `INSERT IGNORE INTO billing_ledger
		(customer_id, currency, entry_key, step, kind, amount_micros, reserved_micros, segments, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.CustomerID, m.Currency, m.Key, m.Step, m.Kind, m.Amount, m.Reserved, m.Segments, m.At)
	if err != nil {
		return smsgw.Movement{}, err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		// Only a step of another customer's key could be there (the lock
		// keeps this customer's out): read it back rather than count it.
		prev, found, err2 := movement(ctx, tx, m.Key, m.Step)
		if err2 == nil && !found {
			err2 = fmt.Errorf("ledger step %s/%s neither inserted nor found", m.Key, m.Step)
		}
		return prev, errors.Join(err, err2)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE billing_balances SET balance_micros = balance_micros + ?,
		reserved_micros = reserved_micros + ?, updated_at = GREATEST(updated_at, ?) WHERE customer_id = ? AND currency = ?`,
		m.Amount, m.Reserved, m.At, m.CustomerID, m.Currency); err != nil {
		return smsgw.Movement{}, err
	}
	if err := tx.Commit(); err != nil {
		return smsgw.Movement{}, err
	}
	m.New = true
	m.Before = b.Available()
	m.After = b.Available() + m.Amount - m.Reserved
	return m, nil
}

// movement reads the movement of one step, if it was made.
func movement(ctx context.Context, tx *sql.Tx, key, step string) (smsgw.Movement, bool, error) {
	m := smsgw.Movement{Key: key, Step: step}
	err := tx.QueryRowContext(ctx, `SELECT customer_id, currency, kind, amount_micros, reserved_micros, segments, created_at
		FROM billing_ledger WHERE entry_key = ? AND step = ?`, key, step).
		Scan(&m.CustomerID, &m.Currency, &m.Kind, &m.Amount, &m.Reserved, &m.Segments, &m.At)
	if errors.Is(err, sql.ErrNoRows) {
		return smsgw.Movement{}, false, nil
	}
	return m, err == nil, err
}

// Discrepancy is a balances row that does not equal the sum of its ledger.
type Discrepancy struct {
	smsgw.Balance
	LedgerBalance, LedgerReserved int64
}

// Reconcile compares every balances row with the sum of its customer's
// movements and returns those that differ (none, unless the tables were
// written outside the store).
func (s *Store) Reconcile(ctx context.Context) ([]Discrepancy, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT b.customer_id, b.currency, b.balance_micros, b.reserved_micros, b.updated_at,
		COALESCE(SUM(l.amount_micros), 0), COALESCE(SUM(l.reserved_micros), 0)
		FROM billing_balances b LEFT JOIN billing_ledger l ON l.customer_id = b.customer_id AND l.currency = b.currency
		GROUP BY b.customer_id, b.currency, b.balance_micros, b.reserved_micros, b.updated_at
		ORDER BY b.customer_id, b.currency`)
	if err != nil {
		return nil, fmt.Errorf("mysqlstore: reconcile: %w", wrap(err))
	}
	defer rows.Close()
	var out []Discrepancy
	for rows.Next() {
		var d Discrepancy
		if err := rows.Scan(&d.CustomerID, &d.Currency, &d.Balance.Balance, &d.Reserved, &d.UpdatedAt, &d.LedgerBalance, &d.LedgerReserved); err != nil {
			return nil, fmt.Errorf("mysqlstore: reconcile: %w", err)
		}
		if d.Balance.Balance != d.LedgerBalance || d.Reserved != d.LedgerReserved {
			out = append(out, d)
		}
	}
	return out, rows.Err()
}

// Movements lists a customer's ledger, oldest first (at most limit rows).
func (s *Store) Movements(ctx context.Context, customerID string, limit int) ([]smsgw.Movement, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT customer_id, currency, entry_key, step, kind, amount_micros, reserved_micros, segments, created_at
		FROM billing_ledger WHERE customer_id = ? ORDER BY id LIMIT ?`, customerID, limit)
	if err != nil {
		return nil, fmt.Errorf("mysqlstore: movements of %s: %w", customerID, wrap(err))
	}
	defer rows.Close()
	var out []smsgw.Movement
	for rows.Next() {
		var m smsgw.Movement
		if err := rows.Scan(&m.CustomerID, &m.Currency, &m.Key, &m.Step, &m.Kind, &m.Amount, &m.Reserved, &m.Segments, &m.At); err != nil {
			return nil, fmt.Errorf("mysqlstore: movements of %s: %w", customerID, err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// unwrapDomain keeps a domain error (an EPAYMENT refusal) as the error
// itself, without withRetry's wrapping in front of its message.
func unwrapDomain(err error) error {
	var e *smsgw.Error
	if errors.As(err, &e) && e.Code == smsgw.EPAYMENT {
		return e
	}
	return err
}

// OpenReservations lists reservations made from since (the zero time: the
// oldest) until before that no close step has lifted, oldest first (by
// time, then message ID), at most limit of them, starting after the
// reservation after (its At and Key; the zero Movement starts from the
// oldest). The reservation reconciler pages through them with the last one
// it got.
func (s *Store) OpenReservations(ctx context.Context, since, before time.Time, after smsgw.Movement, limit int) ([]smsgw.Movement, error) {
	q := `SELECT r.customer_id, r.currency, r.entry_key, r.reserved_micros, r.segments, r.created_at
		FROM billing_ledger r
		LEFT JOIN billing_ledger c ON c.entry_key = r.entry_key AND c.step = ?
		WHERE r.step = ? AND r.created_at < ? AND c.id IS NULL`
	args := []any{smsgw.StepClose, smsgw.StepReserve, before.UTC()}
	if !since.IsZero() {
		q += ` AND r.created_at >= ?`
		args = append(args, since.UTC())
	}
	if after.Key != "" {
		q += ` AND (r.created_at > ? OR (r.created_at = ? AND r.entry_key > ?))`
		args = append(args, after.At.UTC(), after.At.UTC(), after.Key)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY r.created_at, r.entry_key LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("mysqlstore: open reservations: %w", wrap(err))
	}
	defer rows.Close()
	var out []smsgw.Movement
	for rows.Next() {
		m := smsgw.Movement{Step: smsgw.StepReserve, Kind: smsgw.MoveReserve}
		if err := rows.Scan(&m.CustomerID, &m.Currency, &m.Key, &m.Reserved, &m.Segments, &m.At); err != nil {
			return nil, fmt.Errorf("mysqlstore: open reservations: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
