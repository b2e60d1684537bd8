'use strict';
// An ESME built on node-smpp, a third-party peer for the SMSC simulator.
//
//   node esme.js PORT
//
// Binds as transceiver to 127.0.0.1:PORT with "node"/"pw", prints
// {"event":"bound"}, submits one message with a receipt requested, answers
// every deliver_sm with ESME_ROK and prints what it received as JSON lines.
// Once it has a receipt and an MO it unbinds and exits 0; after 10 s it
// exits 1.
const smpp = require('smpp');

const log = (event, fields) => process.stdout.write(JSON.stringify(Object.assign({event}, fields)) + '\n');
const fail = message => { log('failed', {message}); process.exit(1); };
setTimeout(() => fail('timed out'), 10000).unref();

const port = Number(process.argv[2]);
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
    source_addr: pdu.source_addr,
    destination_addr: pdu.destination_addr,
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

session.bind_transceiver({system_id: 'node', password: 'pw'}, pdu => {
  if (pdu.command_status !== 0) fail(`bind refused with status ${pdu.command_status}`);
  log('bound', {});
  session.submit_sm({
    source_addr: 'NODE',
    destination_addr: '61412345678',
    registered_delivery: 1,
    short_message: 'Hello from node-smpp',
  }, resp => log('submit_sm_resp', {command_status: resp.command_status, message_id: resp.message_id}));
});
