'use strict';
// A customer's ESME built on node-smpp, a third-party peer for the
// gateway's own SMSC (connectors/smppserver).
//
//   node customer.js PORT SYSTEM_ID PASSWORD
//
// Binds as transceiver to 127.0.0.1:PORT, prints {"event":"bound"}, submits
// one message with a receipt requested and prints its submit_sm_resp,
// answers every deliver_sm with ESME_ROK and prints what it received as
// JSON lines. Once it has a receipt and an MO it unbinds and exits 0;
// after 20 s it exits 1.
const smpp = require('smpp');

const log = (event, fields) => process.stdout.write(JSON.stringify(Object.assign({event}, fields)) + '\n');
const fail = message => { log('failed', {message}); process.exit(1); };
setTimeout(() => fail('timed out'), 20000).unref();

const [port, systemId, password] = [Number(process.argv[2]), process.argv[3], process.argv[4]];
const session = smpp.connect({url: `smpp://127.0.0.1:${port}`, auto_enquire_link_period: 1000});
session.on('error', err => fail(String(err)));

let gotReceipt = false;
let gotMO = false;
const finish = () => {
  if (!gotReceipt || !gotMO) return;
  session.unbind(resp => {
    log('unbound', {command_status: resp.command_status});
    session.close();
    process.exit(0);
  });
};

session.on('deliver_sm', pdu => {
  session.send(pdu.response());
  const sm = pdu.short_message;
  const fields = {
    esm_class: pdu.esm_class,
    data_coding: pdu.data_coding,
    source_addr: pdu.source_addr,
    source_addr_ton: pdu.source_addr_ton,
    destination_addr: pdu.destination_addr,
    destination_addr_ton: pdu.dest_addr_ton,
    text: typeof sm.message === 'string' ? sm.message : String(sm.message),
    receipted_message_id: pdu.receipted_message_id,
    message_state: pdu.message_state,
  };
  if (pdu.esm_class & smpp.ESM_CLASS.MC_DELIVERY_RECEIPT) {
    gotReceipt = true;
    log('receipt', fields);
  } else {
    gotMO = true;
    log('mo', fields);
  }
  finish();
});

session.bind_transceiver({system_id: systemId, password: password}, pdu => {
  if (pdu.command_status !== 0) fail(`bind refused with status ${pdu.command_status}`);
  log('bound', {});
  session.submit_sm({
    source_addr: 'NODE',
    source_addr_ton: 5,
    destination_addr: '61412345678',
    dest_addr_ton: 1,
    dest_addr_npi: 1,
    registered_delivery: 1,
    data_coding: 8,
    short_message: 'Grüße from node-smpp',
  }, resp => log('submit_sm_resp', {command_status: resp.command_status, message_id: resp.message_id}));
});
