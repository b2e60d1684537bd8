// Package smppstatus names SMPP command_status values and says which of them
// are worth retrying.
//
// The table covers SMPP 3.4 and the SMPP 5.0 additions that SMSCs speaking 3.4
// commonly return anyway (ESME_RINVDCS and friends). A status is Retryable when
// the same PDU may succeed later without change: the SMSC is throttling, its
// queue is full, it had an internal error, or a peer asked us to try again.
// Everything else, and every code the table does not know (vendor-specific
// 0x400–0x4FF included), is Permanent: resending would only repeat the refusal.
package smppstatus

import "fmt"

// Command status values.
const (
	ESME_ROK              uint32 = 0x00000000
	ESME_RINVMSGLEN       uint32 = 0x00000001
	ESME_RINVCMDLEN       uint32 = 0x00000002
	ESME_RINVCMDID        uint32 = 0x00000003
	ESME_RINVBNDSTS       uint32 = 0x00000004
	ESME_RALYBND          uint32 = 0x00000005
	ESME_RINVPRTFLG       uint32 = 0x00000006
	ESME_RINVREGDLVFLG    uint32 = 0x00000007
	ESME_RSYSERR          uint32 = 0x00000008
	ESME_RINVSRCADR       uint32 = 0x0000000A
	ESME_RINVDSTADR       uint32 = 0x0000000B
	ESME_RINVMSGID        uint32 = 0x0000000C
	ESME_RBINDFAIL        uint32 = 0x0000000D
	ESME_RINVPASWD        uint32 = 0x0000000E
	ESME_RINVSYSID        uint32 = 0x0000000F
	ESME_RCANCELFAIL      uint32 = 0x00000011
	ESME_RREPLACEFAIL     uint32 = 0x00000013
	ESME_RMSGQFUL         uint32 = 0x00000014
	ESME_RINVSERTYP       uint32 = 0x00000015
	ESME_RINVNUMDESTS     uint32 = 0x00000033
	ESME_RINVDLNAME       uint32 = 0x00000034
	ESME_RINVDESTFLAG     uint32 = 0x00000040
	ESME_RINVSUBREP       uint32 = 0x00000042
	ESME_RINVESMCLASS     uint32 = 0x00000043
	ESME_RCNTSUBDL        uint32 = 0x00000044
	ESME_RSUBMITFAIL      uint32 = 0x00000045
	ESME_RINVSRCTON       uint32 = 0x00000048
	ESME_RINVSRCNPI       uint32 = 0x00000049
	ESME_RINVDSTTON       uint32 = 0x00000050
	ESME_RINVDSTNPI       uint32 = 0x00000051
	ESME_RINVSYSTYP       uint32 = 0x00000053
	ESME_RINVREPFLAG      uint32 = 0x00000054
	ESME_RINVNUMMSGS      uint32 = 0x00000055
	ESME_RTHROTTLED       uint32 = 0x00000058
	ESME_RINVSCHED        uint32 = 0x00000061
	ESME_RINVEXPIRY       uint32 = 0x00000062
	ESME_RINVDFTMSGID     uint32 = 0x00000063
	ESME_RX_T_APPN        uint32 = 0x00000064
	ESME_RX_P_APPN        uint32 = 0x00000065
	ESME_RX_R_APPN        uint32 = 0x00000066
	ESME_RQUERYFAIL       uint32 = 0x00000067
	ESME_RINVOPTPARSTREAM uint32 = 0x000000C0
	ESME_ROPTPARNOTALLWD  uint32 = 0x000000C1
	ESME_RINVPARLEN       uint32 = 0x000000C2
	ESME_RMISSINGOPTPARAM uint32 = 0x000000C3
	ESME_RINVOPTPARAMVAL  uint32 = 0x000000C4
	ESME_RDELIVERYFAILURE uint32 = 0x000000FE
	ESME_RUNKNOWNERR      uint32 = 0x000000FF
	// SMPP 5.0 additions.
	ESME_RSERTYPUNAUTH  uint32 = 0x00000100
	ESME_RPROHIBITED    uint32 = 0x00000101
	ESME_RSERTYPUNAVAIL uint32 = 0x00000102
	ESME_RSERTYPDENIED  uint32 = 0x00000103
	ESME_RINVDCS        uint32 = 0x00000104
	ESME_RINVSRCADDRSUB uint32 = 0x00000105
	ESME_RINVDSTADDRSUB uint32 = 0x00000106
)

// Classification of a failed request.
const (
	// Permanent: sending the same PDU again gives the same answer.
	Permanent = false
	// Retry: the condition is temporary; send again later, or on another bind.
	Retry = true
)

// Entry describes one command_status value.
type Entry struct {
	Code        uint32
	Name        string
	Description string
	Retryable   bool // Retry or Permanent
}

// Table lists every command_status value this package knows, in code order.
var Table = []Entry{
	{ESME_ROK, "ESME_ROK", "no error", Permanent},
	{ESME_RINVMSGLEN, "ESME_RINVMSGLEN", "message length is invalid", Permanent},
	{ESME_RINVCMDLEN, "ESME_RINVCMDLEN", "command length is invalid", Permanent},
	{ESME_RINVCMDID, "ESME_RINVCMDID", "invalid command ID", Permanent},
	{ESME_RINVBNDSTS, "ESME_RINVBNDSTS", "incorrect bind status for given command", Retry},
	{ESME_RALYBND, "ESME_RALYBND", "ESME already in bound state", Permanent},
	{ESME_RINVPRTFLG, "ESME_RINVPRTFLG", "invalid priority flag", Permanent},
	{ESME_RINVREGDLVFLG, "ESME_RINVREGDLVFLG", "invalid registered delivery flag", Permanent},
	{ESME_RSYSERR, "ESME_RSYSERR", "system error", Retry},
	{ESME_RINVSRCADR, "ESME_RINVSRCADR", "invalid source address", Permanent},
	{ESME_RINVDSTADR, "ESME_RINVDSTADR", "invalid destination address", Permanent},
	{ESME_RINVMSGID, "ESME_RINVMSGID", "message ID is invalid", Permanent},
	{ESME_RBINDFAIL, "ESME_RBINDFAIL", "bind failed", Permanent},
	{ESME_RINVPASWD, "ESME_RINVPASWD", "invalid password", Permanent},
	{ESME_RINVSYSID, "ESME_RINVSYSID", "invalid system ID", Permanent},
	{ESME_RCANCELFAIL, "ESME_RCANCELFAIL", "cancel_sm failed", Permanent},
	{ESME_RREPLACEFAIL, "ESME_RREPLACEFAIL", "replace_sm failed", Permanent},
	{ESME_RMSGQFUL, "ESME_RMSGQFUL", "message queue full", Retry},
	{ESME_RINVSERTYP, "ESME_RINVSERTYP", "invalid service type", Permanent},
	{ESME_RINVNUMDESTS, "ESME_RINVNUMDESTS", "invalid number of destinations", Permanent},
	{ESME_RINVDLNAME, "ESME_RINVDLNAME", "invalid distribution list name", Permanent},
	{ESME_RINVDESTFLAG, "ESME_RINVDESTFLAG", "destination flag is invalid", Permanent},
	{ESME_RINVSUBREP, "ESME_RINVSUBREP", "invalid submit with replace request", Permanent},
	{ESME_RINVESMCLASS, "ESME_RINVESMCLASS", "invalid esm_class field data", Permanent},
	{ESME_RCNTSUBDL, "ESME_RCNTSUBDL", "cannot submit to distribution list", Permanent},
	{ESME_RSUBMITFAIL, "ESME_RSUBMITFAIL", "submit_sm or submit_multi failed", Permanent},
	{ESME_RINVSRCTON, "ESME_RINVSRCTON", "invalid source address TON", Permanent},
	{ESME_RINVSRCNPI, "ESME_RINVSRCNPI", "invalid source address NPI", Permanent},
	{ESME_RINVDSTTON, "ESME_RINVDSTTON", "invalid destination address TON", Permanent},
	{ESME_RINVDSTNPI, "ESME_RINVDSTNPI", "invalid destination address NPI", Permanent},
	{ESME_RINVSYSTYP, "ESME_RINVSYSTYP", "invalid system_type field", Permanent},
	{ESME_RINVREPFLAG, "ESME_RINVREPFLAG", "invalid replace_if_present flag", Permanent},
	{ESME_RINVNUMMSGS, "ESME_RINVNUMMSGS", "invalid number of messages", Permanent},
	{ESME_RTHROTTLED, "ESME_RTHROTTLED", "throttling error: the ESME exceeded its allowed message rate", Retry},
	{ESME_RINVSCHED, "ESME_RINVSCHED", "invalid scheduled delivery time", Permanent},
	{ESME_RINVEXPIRY, "ESME_RINVEXPIRY", "invalid validity period", Permanent},
	{ESME_RINVDFTMSGID, "ESME_RINVDFTMSGID", "predefined message invalid or not found", Permanent},
	{ESME_RX_T_APPN, "ESME_RX_T_APPN", "receiver temporary application error", Retry},
	{ESME_RX_P_APPN, "ESME_RX_P_APPN", "receiver permanent application error", Permanent},
	{ESME_RX_R_APPN, "ESME_RX_R_APPN", "receiver reject message error", Permanent},
	{ESME_RQUERYFAIL, "ESME_RQUERYFAIL", "query_sm failed", Permanent},
	{ESME_RINVOPTPARSTREAM, "ESME_RINVOPTPARSTREAM", "error in the optional part of the PDU body", Permanent},
	{ESME_ROPTPARNOTALLWD, "ESME_ROPTPARNOTALLWD", "optional parameter not allowed", Permanent},
	{ESME_RINVPARLEN, "ESME_RINVPARLEN", "invalid parameter length", Permanent},
	{ESME_RMISSINGOPTPARAM, "ESME_RMISSINGOPTPARAM", "expected optional parameter missing", Permanent},
	{ESME_RINVOPTPARAMVAL, "ESME_RINVOPTPARAMVAL", "invalid optional parameter value", Permanent},
	{ESME_RDELIVERYFAILURE, "ESME_RDELIVERYFAILURE", "delivery failure (data_sm_resp)", Permanent},
	{ESME_RUNKNOWNERR, "ESME_RUNKNOWNERR", "unknown error", Permanent},
	{ESME_RSERTYPUNAUTH, "ESME_RSERTYPUNAUTH", "ESME not authorised to use the service type", Permanent},
	{ESME_RPROHIBITED, "ESME_RPROHIBITED", "ESME prohibited from using the operation", Permanent},
	{ESME_RSERTYPUNAVAIL, "ESME_RSERTYPUNAVAIL", "service type unavailable", Retry},
	{ESME_RSERTYPDENIED, "ESME_RSERTYPDENIED", "service type denied", Permanent},
	{ESME_RINVDCS, "ESME_RINVDCS", "invalid data coding scheme", Permanent},
	{ESME_RINVSRCADDRSUB, "ESME_RINVSRCADDRSUB", "invalid source address subunit", Permanent},
	{ESME_RINVDSTADDRSUB, "ESME_RINVDSTADDRSUB", "invalid destination address subunit", Permanent},
}

var byCode = func() map[uint32]Entry {
	m := make(map[uint32]Entry, len(Table))
	for _, e := range Table {
		m[e.Code] = e
	}
	return m
}()

// Lookup returns the entry for code, and false for a code the table does not know.
func Lookup(code uint32) (Entry, bool) {
	e, ok := byCode[code]
	return e, ok
}

// Name returns the symbolic name of code, such as "ESME_RTHROTTLED", or
// "0x00000401" for a code the table does not know.
func Name(code uint32) string {
	if e, ok := byCode[code]; ok {
		return e.Name
	}
	return fmt.Sprintf("0x%08X", code)
}

// Describe returns the name and a short description, for logs and error texts.
func Describe(code uint32) string {
	if e, ok := byCode[code]; ok {
		return e.Name + " (" + e.Description + ")"
	}
	return fmt.Sprintf("0x%08X (unknown command_status)", code)
}

// Retryable reports whether a request refused with code may succeed if sent
// again later. ESME_ROK and codes the table does not know are Permanent.
func Retryable(code uint32) bool { return byCode[code].Retryable }
