
use builtin;
use str;

set edit:completion:arg-completer[session-proxy] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'session-proxy'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'session-proxy'= {
            cand --config 'Configuration file (default: ./config.yaml, then the XDG config dir)'
            cand --control-socket 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)'
            cand -v 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand stdio 'Bridge stdin/stdout to a port on an instance (use as OpenSSH ProxyCommand)'
            cand shell 'Open an interactive shell on an instance (like `aws ssm start-session`)'
            cand forward 'Forward local ports to hosts the instance reaches (`ssh -L` over SSM port sessions)'
            cand sim 'Run a local simulator of the AWS side of Session Manager (no AWS account needed)'
            cand serve 'SOCKS5 (and HTTP CONNECT) proxy routing destinations to SSH-over-SSM bastion pools, direct, or reject'
            cand exec 'Run a command on an instance: its output on stdout, its exit status as ours'
            cand demo 'Try it without AWS: simulator + demo instance + SOCKS5 proxy in one process'
            cand status 'Show the running master''s upstreams, forwards, connections and traffic (exits 68 while an upstream is down)'
            cand connect 'Bring an upstream of the running master up and wait for a ready connection, or start a forward again'
            cand disconnect 'Close an upstream''s SSM sessions (its destinations get "host unreachable"), or stop a forward (its listener and sessions)'
            cand reload 'Make the running master re-read its config and apply what changed'
            cand stop 'Stop the running master (drain, terminate every SSM session)'
            cand route 'Show which route, upstream or default a destination takes (asks the running master)'
            cand ssh-config 'Print an ssh_config snippet (or write it with --write) so `ssh i-…` and `ssh <alias>` go through Session Manager'
            cand instances 'List the managed instances Session Manager reaches, with the config aliases and upstreams that point at each'
            cand doctor 'Check config, credentials, region, endpoint, permissions, a target, the master and ssh, naming the fix for each failure'
            cand generate 'Write shell completions and man pages'
            cand completions 'Print the completion script for a shell (`source <(session-proxy completions bash)`)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'session-proxy;stdio'= {
            cand -p 'Port on the instance (portNumber of the session document). Default: the alias''s port, else 22'
            cand --port 'Port on the instance (portNumber of the session document). Default: the alias''s port, else 22'
            cand --profile 'AWS profile (default: the alias''s, else AWS_PROFILE or the default profile)'
            cand --region 'AWS region (default: AWS_REGION or the profile''s region)'
            cand --document 'Session document'
            cand --chunk 'Bytes per outgoing data-channel message (a tuning knob for benchmarks, hidden from `--help`: the agent''s own limit is what matters to users)'
            cand --send-key 'Push a public key with EC2 Instance Connect (SendSSHPublicKey) before connecting, so the instance accepts it for 60 s. Default key: the first of ~/.ssh/id_ed25519.pub, id_ecdsa.pub, id_rsa.pub, else the first ssh-agent key. EC2 instances (i-…) only; always opens its own session (never through a master)'
            cand --os-user 'The OS user the pushed key is for: pass ssh''s login (`--os-user %r` in a ProxyCommand). Default: ec2-user'
            cand --config 'Configuration file (default: ./config.yaml, then the XDG config dir)'
            cand --control-socket 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)'
            cand -v 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'session-proxy;shell'= {
            cand --document 'Session document (Standard_Stream or InteractiveCommands), e.g. AWS-StartInteractiveCommand with --parameter command=…'
            cand --parameter 'A parameter of the document; repeat a key to give it a list of values'
            cand --profile 'AWS profile (default: the alias''s, else AWS_PROFILE or the default profile)'
            cand --region 'AWS region (default: AWS_REGION or the profile''s region)'
            cand --config 'Configuration file (default: ./config.yaml, then the XDG config dir)'
            cand --control-socket 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)'
            cand -v 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'session-proxy;forward'= {
            cand --via 'The instance that reaches HOST: an id (i-…, mi-…), Name tag, `hosts:` alias, or an upstream of the config (through the running master''s SSH pool when one runs)'
            cand --sessions 'SSM sessions per spec; connections spread over them (one carries about 1 MB/s)'
            cand --profile 'AWS profile (default: the alias''s or upstream''s, else AWS_PROFILE or the default)'
            cand --region 'AWS region (default: AWS_REGION or the profile''s region)'
            cand --ready-file 'Once listening, write the bound addresses here, one per line (for scripts and tests)'
            cand --config 'Configuration file (default: ./config.yaml, then the XDG config dir)'
            cand --control-socket 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)'
            cand --allow-remote 'Allow a BIND address that is not loopback (other machines can then use the forward)'
            cand -v 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'session-proxy;sim'= {
            cand --listen 'Address to listen on (loopback only)'
            cand --target 'An instance: `i-0123456789abcdef0=127.0.0.1:2222[,name=web,ip=10.0.0.5,computer=host,offline,agent=3.3.987.0,host=db.internal@127.0.0.1]`. `host=NAME@LOOPBACK-IP` (repeatable) names a host the instance reaches, for AWS-StartPortForwardingSessionToRemoteHost'
            cand --instances 'YAML file listing instances'
            cand --pace-ms 'Milliseconds the agent sleeps per chunk read (1 imitates the real agent''s ~1 MB/s)'
            cand --chunk 'Bytes per agent output message'
            cand --agent-version 'AgentVersion to report in the handshake (default: each instance''s)'
            cand --write-rate 'Bytes per second the agent writes to its target at most; it acknowledges client data only once written, so e.g. 7000000 gives the real agent''s late acks during uploads'
            cand --ack-race-every 'Lose the first acknowledge of every Nth agent message (the real agent''s send/ack race)'
            cand --kms-key-id 'KMS key ARN: shell sessions (never port sessions) are then encrypted with it, as with a KMS key in the Session Manager preferences; the simulator answers the KMS calls'
            cand --shell-command 'What a shell session (SSM-SessionManagerRunShell) runs in its pty on every instance; a command with arguments runs through `sh -c`'
            cand --seed 'Seed of the fault plan (printed so a failure can be replayed)'
            cand --drop 'Drop rate (0..1) of frames in both directions'
            cand --duplicate 'Duplicate rate (0..1) of frames in both directions'
            cand --reorder 'Reorder rate (0..1) of frames in both directions'
            cand --delay-ms 'Extra delay in milliseconds for every frame'
            cand --kill-after-bytes 'Close the client''s WebSocket (code 1000) after this many bytes, repeatedly'
            cand --kill-every-secs 'Close the client''s WebSocket (code 1000) every this many seconds'
            cand --credential-lifetime 'Mint credentials that expire after SECS on `GET /_sim/credentials` (credential_process JSON, e.g. `credential_process = curl -s http://ADDR/_sim/credentials`) and accept only those: an unknown key is UnrecognizedClientException, an expired one ExpiredTokenException. Tests refreshes of expiring credentials'
            cand --deny 'Answer this IAM action with AccessDenied, as an account whose policy lacks it would (repeatable): `ssm:StartSession`, `ssm:DescribeInstanceInformation`, `kms:Decrypt`, `tag:GetResources`'
            cand --idle-timeout-secs 'Seconds a session may wait for its client to resume before it is closed'
            cand --stats-file 'Write per-session stats (JSON) here on exit'
            cand --state-dir 'Directory for the demo instance''s keys (default: $XDG_STATE_HOME/session-proxy/demo)'
            cand --config 'Configuration file (default: ./config.yaml, then the XDG config dir)'
            cand --control-socket 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)'
            cand --legacy-agent 'Imitate agents that skip the handshake'
            cand --require-signed-upgrade 'Refuse (HTTP 403) data-channel upgrades that are not SigV4-signed with the simulator''s credentials (the ones its environment lines print). Without it both forms are accepted (and counted in the stats)'
            cand -v 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'session-proxy;serve'= {
            cand --listen 'SOCKS5 listen address or Unix socket path (repeatable; replaces the config''s listeners)'
            cand --default 'Default action: direct, reject or an upstream name'
            cand --profile 'AWS profile for every upstream'
            cand --region 'AWS region for every upstream'
            cand --state-dir 'Directory for known_hosts and logs (default: XDG state dir)'
            cand --target 'Ad-hoc mode: bastion instance id or name (repeatable); builds a one-upstream config'
            cand --user 'Ad-hoc mode: SSH user on the bastion'
            cand -i 'Ad-hoc mode: SSH private key (repeatable)'
            cand --identity 'Ad-hoc mode: SSH private key (repeatable)'
            cand --port 'Ad-hoc mode: sshd port on the bastion'
            cand --pool-size 'Ad-hoc mode: SSH connections (SSM sessions) to keep open'
            cand --host-key-policy 'Ad-hoc mode: host key policy'
            cand --ready-file 'Once ready, write the bound listener addresses here, one per line (for scripts and tests that listen on port 0)'
            cand --drain-timeout 'Seconds `stop`/SIGTERM/SIGINT let streams in flight finish before closing them (config `drain_timeout_secs`, default 10); a second stop closes them at once'
            cand --config 'Configuration file (default: ./config.yaml, then the XDG config dir)'
            cand --control-socket 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)'
            cand --foreground 'Stay in the foreground (for systemd, launchd and tests)'
            cand --allow-remote 'Allow listening on non-loopback addresses'
            cand --ssh-agent 'Ad-hoc mode: use ssh-agent ($SSH_AUTH_SOCK)'
            cand -v 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'session-proxy;exec'= {
            cand --document 'A separate-output session document (see --install-document); default: the config''s exec.document, else AWS-StartNonInteractiveCommand (merged output, wrapped)'
            cand --install-document 'Create the separate-output session document NAME [default: SessionProxy-Exec] in the account (ssm:CreateDocument), or confirm it is there, and say how to use it'
            cand --profile 'AWS profile (default: the alias''s, else AWS_PROFILE or the default profile)'
            cand --region 'AWS region (default: the alias''s, else AWS_REGION or the profile''s region)'
            cand --config 'Configuration file (default: ./config.yaml, then the XDG config dir)'
            cand --control-socket 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)'
            cand --raw 'Send the command as is: no `sh -c`, no end marker (exit status unknown: exit 0)'
            cand -t 'Run the command in a pty on the target (AWS-StartInteractiveCommand), stdin as typed'
            cand --tty 'Run the command in a pty on the target (AWS-StartInteractiveCommand), stdin as typed'
            cand -i 'Forward stdin to the command, with EOF (like `docker exec -i`; the command runs in a pty, stdout and stderr merged)'
            cand --stdin 'Forward stdin to the command, with EOF (like `docker exec -i`; the command runs in a pty, stdout and stderr merged)'
            cand -v 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'session-proxy;demo'= {
            cand --listen 'SOCKS5 listen address (loopback). Default: 127.0.0.1:1080, or the next free port up to 1099'
            cand --state-dir 'Directory for the demo keys, known_hosts, env file and ssh_config (default: $XDG_STATE_HOME/session-proxy/demo)'
            cand --config 'Configuration file (default: ./config.yaml, then the XDG config dir)'
            cand --control-socket 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)'
            cand -v 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'session-proxy;status'= {
            cand --config 'Configuration file (default: ./config.yaml, then the XDG config dir)'
            cand --control-socket 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)'
            cand --json 'Print the report as JSON (errors in full; the table shortens LAST ERROR)'
            cand -v 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'session-proxy;connect'= {
            cand --config 'Configuration file (default: ./config.yaml, then the XDG config dir)'
            cand --control-socket 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)'
            cand -v 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'session-proxy;disconnect'= {
            cand --config 'Configuration file (default: ./config.yaml, then the XDG config dir)'
            cand --control-socket 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)'
            cand -v 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'session-proxy;reload'= {
            cand --config 'Configuration file (default: ./config.yaml, then the XDG config dir)'
            cand --control-socket 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)'
            cand -v 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'session-proxy;stop'= {
            cand --config 'Configuration file (default: ./config.yaml, then the XDG config dir)'
            cand --control-socket 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)'
            cand -v 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'session-proxy;route'= {
            cand --config 'Configuration file (default: ./config.yaml, then the XDG config dir)'
            cand --control-socket 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)'
            cand -v 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'session-proxy;ssh-config'= {
            cand --profile 'AWS profile for the ProxyCommand (default: each alias''s, else AWS_PROFILE or the default profile)'
            cand --region 'AWS region for the ProxyCommand (default: each alias''s, else AWS_REGION or the profile''s)'
            cand --write 'Write the snippet to this file (atomically, mode 0644), e.g. ~/.ssh/config.d/session-proxy, and print the `Include` line ~/.ssh/config needs. The user''s own ~/.ssh/config is never changed'
            cand --config 'Configuration file (default: ./config.yaml, then the XDG config dir)'
            cand --control-socket 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)'
            cand --send-key 'Make the ProxyCommand push your public key with EC2 Instance Connect before each login (`stdio --send-key --os-user %r`), for instances that have no key of yours'
            cand -v 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'session-proxy;instances'= {
            cand --filter 'A DescribeInstanceInformation filter KEY=VALUE[,VALUE...], e.g. `tag:Env=prod`, `tag-key=Team`, `PlatformTypes=Linux` (repeatable: all must match, values are OR-ed)'
            cand --profile 'AWS profile (default: the config''s `aws.profile`, else AWS_PROFILE or the default)'
            cand --region 'AWS region (default: the config''s `aws.region`, else AWS_REGION or the profile''s)'
            cand --config 'Configuration file (default: ./config.yaml, then the XDG config dir)'
            cand --control-socket 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)'
            cand --online 'Only instances whose agent is connected (PingStatus Online)'
            cand --json 'Print one JSON array (fields: id, name, ping_status, platform, agent_version, ip_address, computer_name, last_ping, aliases, upstreams) instead of the table'
            cand -v 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'session-proxy;doctor'= {
            cand --profile 'AWS profile (default: the alias''s, the config''s `aws.profile`, else AWS_PROFILE or the default)'
            cand --region 'AWS region (default: the alias''s, the config''s `aws.region`, else AWS_REGION or the profile''s)'
            cand --config 'Configuration file (default: ./config.yaml, then the XDG config dir)'
            cand --control-socket 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)'
            cand --json 'Print one JSON object {"ok": bool, "checks": [{name, status, detail, fix}]} instead of the text'
            cand -v 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'session-proxy;generate'= {
            cand --completions 'Directory for completions (bash, zsh, fish, elvish, powershell)'
            cand --man 'Directory for man pages'
            cand --config 'Configuration file (default: ./config.yaml, then the XDG config dir)'
            cand --control-socket 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)'
            cand -v 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'session-proxy;completions'= {
            cand --config 'Configuration file (default: ./config.yaml, then the XDG config dir)'
            cand --control-socket 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)'
            cand -v 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More logging on stderr (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'session-proxy;help'= {
            cand stdio 'Bridge stdin/stdout to a port on an instance (use as OpenSSH ProxyCommand)'
            cand shell 'Open an interactive shell on an instance (like `aws ssm start-session`)'
            cand forward 'Forward local ports to hosts the instance reaches (`ssh -L` over SSM port sessions)'
            cand sim 'Run a local simulator of the AWS side of Session Manager (no AWS account needed)'
            cand serve 'SOCKS5 (and HTTP CONNECT) proxy routing destinations to SSH-over-SSM bastion pools, direct, or reject'
            cand exec 'Run a command on an instance: its output on stdout, its exit status as ours'
            cand demo 'Try it without AWS: simulator + demo instance + SOCKS5 proxy in one process'
            cand status 'Show the running master''s upstreams, forwards, connections and traffic (exits 68 while an upstream is down)'
            cand connect 'Bring an upstream of the running master up and wait for a ready connection, or start a forward again'
            cand disconnect 'Close an upstream''s SSM sessions (its destinations get "host unreachable"), or stop a forward (its listener and sessions)'
            cand reload 'Make the running master re-read its config and apply what changed'
            cand stop 'Stop the running master (drain, terminate every SSM session)'
            cand route 'Show which route, upstream or default a destination takes (asks the running master)'
            cand ssh-config 'Print an ssh_config snippet (or write it with --write) so `ssh i-…` and `ssh <alias>` go through Session Manager'
            cand instances 'List the managed instances Session Manager reaches, with the config aliases and upstreams that point at each'
            cand doctor 'Check config, credentials, region, endpoint, permissions, a target, the master and ssh, naming the fix for each failure'
            cand generate 'Write shell completions and man pages'
            cand completions 'Print the completion script for a shell (`source <(session-proxy completions bash)`)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'session-proxy;help;stdio'= {
        }
        &'session-proxy;help;shell'= {
        }
        &'session-proxy;help;forward'= {
        }
        &'session-proxy;help;sim'= {
        }
        &'session-proxy;help;serve'= {
        }
        &'session-proxy;help;exec'= {
        }
        &'session-proxy;help;demo'= {
        }
        &'session-proxy;help;status'= {
        }
        &'session-proxy;help;connect'= {
        }
        &'session-proxy;help;disconnect'= {
        }
        &'session-proxy;help;reload'= {
        }
        &'session-proxy;help;stop'= {
        }
        &'session-proxy;help;route'= {
        }
        &'session-proxy;help;ssh-config'= {
        }
        &'session-proxy;help;instances'= {
        }
        &'session-proxy;help;doctor'= {
        }
        &'session-proxy;help;generate'= {
        }
        &'session-proxy;help;completions'= {
        }
        &'session-proxy;help;help'= {
        }
    ]
    $completions[$command]
}
