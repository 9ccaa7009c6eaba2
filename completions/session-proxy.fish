# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_session_proxy_global_optspecs
    string join \n v/verbose q/quiet config= control-socket= h/help V/version
end

function __fish_session_proxy_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_session_proxy_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_session_proxy_using_subcommand
    set -l cmd (__fish_session_proxy_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c session-proxy -n "__fish_session_proxy_needs_command" -l config -d 'Configuration file (default: ./config.yaml, then the XDG config dir)' -r -F
complete -c session-proxy -n "__fish_session_proxy_needs_command" -l control-socket -d 'Control socket of the master (default: the config\'s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)' -r -F
complete -c session-proxy -n "__fish_session_proxy_needs_command" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace)'
complete -c session-proxy -n "__fish_session_proxy_needs_command" -s q -l quiet -d 'Only errors on stderr'
complete -c session-proxy -n "__fish_session_proxy_needs_command" -s h -l help -d 'Print help'
complete -c session-proxy -n "__fish_session_proxy_needs_command" -s V -l version -d 'Print version'
complete -c session-proxy -n "__fish_session_proxy_needs_command" -f -a "stdio" -d 'Bridge stdin/stdout to a port on an instance (use as OpenSSH ProxyCommand)'
complete -c session-proxy -n "__fish_session_proxy_needs_command" -f -a "shell" -d 'Open an interactive shell on an instance (like `aws ssm start-session`)'
complete -c session-proxy -n "__fish_session_proxy_needs_command" -f -a "forward" -d 'Forward local ports to hosts the instance reaches (`ssh -L` over SSM port sessions)'
complete -c session-proxy -n "__fish_session_proxy_needs_command" -f -a "sim" -d 'Run a local simulator of the AWS side of Session Manager (no AWS account needed)'
complete -c session-proxy -n "__fish_session_proxy_needs_command" -f -a "serve" -d 'SOCKS5 (and HTTP CONNECT) proxy routing destinations to SSH-over-SSM bastion pools, direct, or reject'
complete -c session-proxy -n "__fish_session_proxy_needs_command" -f -a "exec" -d 'Run a command on an instance: its output on stdout, its exit status as ours'
complete -c session-proxy -n "__fish_session_proxy_needs_command" -f -a "demo" -d 'Try it without AWS: simulator + demo instance + SOCKS5 proxy in one process'
complete -c session-proxy -n "__fish_session_proxy_needs_command" -f -a "status" -d 'Show the running master\'s upstreams, forwards, connections and traffic (exits 68 while an upstream is down)'
complete -c session-proxy -n "__fish_session_proxy_needs_command" -f -a "connect" -d 'Bring an upstream of the running master up and wait for a ready connection, or start a forward again'
complete -c session-proxy -n "__fish_session_proxy_needs_command" -f -a "disconnect" -d 'Close an upstream\'s SSM sessions (its destinations get "host unreachable"), or stop a forward (its listener and sessions)'
complete -c session-proxy -n "__fish_session_proxy_needs_command" -f -a "reload" -d 'Make the running master re-read its config and apply what changed'
complete -c session-proxy -n "__fish_session_proxy_needs_command" -f -a "stop" -d 'Stop the running master (drain, terminate every SSM session)'
complete -c session-proxy -n "__fish_session_proxy_needs_command" -f -a "route" -d 'Show which route, upstream or default a destination takes (asks the running master)'
complete -c session-proxy -n "__fish_session_proxy_needs_command" -f -a "ssh-config" -d 'Print an ssh_config snippet (or write it with --write) so `ssh i-…` and `ssh <alias>` go through Session Manager'
complete -c session-proxy -n "__fish_session_proxy_needs_command" -f -a "instances" -d 'List the managed instances Session Manager reaches, with the config aliases and upstreams that point at each'
complete -c session-proxy -n "__fish_session_proxy_needs_command" -f -a "doctor" -d 'Check config, credentials, region, endpoint, permissions, a target, the master and ssh, naming the fix for each failure'
complete -c session-proxy -n "__fish_session_proxy_needs_command" -f -a "generate" -d 'Write shell completions and man pages'
complete -c session-proxy -n "__fish_session_proxy_needs_command" -f -a "completions" -d 'Print the completion script for a shell (`source <(session-proxy completions bash)`)'
complete -c session-proxy -n "__fish_session_proxy_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand stdio" -s p -l port -d 'Port on the instance (portNumber of the session document). Default: the alias\'s port, else 22' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand stdio" -l profile -d 'AWS profile (default: the alias\'s, else AWS_PROFILE or the default profile)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand stdio" -l region -d 'AWS region (default: AWS_REGION or the profile\'s region)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand stdio" -l document -d 'Session document' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand stdio" -l chunk -d 'Bytes per outgoing data-channel message (a tuning knob for benchmarks, hidden from `--help`: the agent\'s own limit is what matters to users)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand stdio" -l send-key -d 'Push a public key with EC2 Instance Connect (SendSSHPublicKey) before connecting, so the instance accepts it for 60 s. Default key: the first of ~/.ssh/id_ed25519.pub, id_ecdsa.pub, id_rsa.pub, else the first ssh-agent key. EC2 instances (i-…) only; always opens its own session (never through a master)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand stdio" -l os-user -d 'The OS user the pushed key is for: pass ssh\'s login (`--os-user %r` in a ProxyCommand). Default: ec2-user' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand stdio" -l config -d 'Configuration file (default: ./config.yaml, then the XDG config dir)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand stdio" -l control-socket -d 'Control socket of the master (default: the config\'s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand stdio" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand stdio" -s q -l quiet -d 'Only errors on stderr'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand stdio" -s h -l help -d 'Print help'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand stdio" -s V -l version -d 'Print version'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand shell" -l document -d 'Session document (Standard_Stream or InteractiveCommands), e.g. AWS-StartInteractiveCommand with --parameter command=…' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand shell" -l parameter -d 'A parameter of the document; repeat a key to give it a list of values' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand shell" -l profile -d 'AWS profile (default: the alias\'s, else AWS_PROFILE or the default profile)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand shell" -l region -d 'AWS region (default: AWS_REGION or the profile\'s region)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand shell" -l config -d 'Configuration file (default: ./config.yaml, then the XDG config dir)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand shell" -l control-socket -d 'Control socket of the master (default: the config\'s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand shell" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand shell" -s q -l quiet -d 'Only errors on stderr'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand shell" -s h -l help -d 'Print help'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand shell" -s V -l version -d 'Print version'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand forward" -l via -d 'The instance that reaches HOST: an id (i-…, mi-…), Name tag, `hosts:` alias, or an upstream of the config (through the running master\'s SSH pool when one runs)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand forward" -l sessions -d 'SSM sessions per spec; connections spread over them (one carries about 1 MB/s)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand forward" -l profile -d 'AWS profile (default: the alias\'s or upstream\'s, else AWS_PROFILE or the default)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand forward" -l region -d 'AWS region (default: AWS_REGION or the profile\'s region)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand forward" -l ready-file -d 'Once listening, write the bound addresses here, one per line (for scripts and tests)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand forward" -l config -d 'Configuration file (default: ./config.yaml, then the XDG config dir)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand forward" -l control-socket -d 'Control socket of the master (default: the config\'s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand forward" -l allow-remote -d 'Allow a BIND address that is not loopback (other machines can then use the forward)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand forward" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand forward" -s q -l quiet -d 'Only errors on stderr'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand forward" -s h -l help -d 'Print help'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand forward" -s V -l version -d 'Print version'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l listen -d 'Address to listen on (loopback only)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l target -d 'An instance: `i-0123456789abcdef0=127.0.0.1:2222[,name=web,ip=10.0.0.5,computer=host,offline,agent=3.3.987.0,host=db.internal@127.0.0.1]`. `host=NAME@LOOPBACK-IP` (repeatable) names a host the instance reaches, for AWS-StartPortForwardingSessionToRemoteHost' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l instances -d 'YAML file listing instances' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l pace-ms -d 'Milliseconds the agent sleeps per chunk read (1 imitates the real agent\'s ~1 MB/s)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l chunk -d 'Bytes per agent output message' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l agent-version -d 'AgentVersion to report in the handshake (default: each instance\'s)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l write-rate -d 'Bytes per second the agent writes to its target at most; it acknowledges client data only once written, so e.g. 7000000 gives the real agent\'s late acks during uploads' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l ack-race-every -d 'Lose the first acknowledge of every Nth agent message (the real agent\'s send/ack race)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l kms-key-id -d 'KMS key ARN: shell sessions (never port sessions) are then encrypted with it, as with a KMS key in the Session Manager preferences; the simulator answers the KMS calls' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l shell-command -d 'What a shell session (SSM-SessionManagerRunShell) runs in its pty on every instance; a command with arguments runs through `sh -c`' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l seed -d 'Seed of the fault plan (printed so a failure can be replayed)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l drop -d 'Drop rate (0..1) of frames in both directions' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l duplicate -d 'Duplicate rate (0..1) of frames in both directions' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l reorder -d 'Reorder rate (0..1) of frames in both directions' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l delay-ms -d 'Extra delay in milliseconds for every frame' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l kill-after-bytes -d 'Close the client\'s WebSocket (code 1000) after this many bytes, repeatedly' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l kill-every-secs -d 'Close the client\'s WebSocket (code 1000) every this many seconds' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l credential-lifetime -d 'Mint credentials that expire after SECS on `GET /_sim/credentials` (credential_process JSON, e.g. `credential_process = curl -s http://ADDR/_sim/credentials`) and accept only those: an unknown key is UnrecognizedClientException, an expired one ExpiredTokenException. Tests refreshes of expiring credentials' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l deny -d 'Answer this IAM action with AccessDenied, as an account whose policy lacks it would (repeatable): `ssm:StartSession`, `ssm:DescribeInstanceInformation`, `kms:Decrypt`, `tag:GetResources`' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l idle-timeout-secs -d 'Seconds a session may wait for its client to resume before it is closed' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l stats-file -d 'Write per-session stats (JSON) here on exit' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l state-dir -d 'Directory for the demo instance\'s keys (default: $XDG_STATE_HOME/session-proxy/demo)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l config -d 'Configuration file (default: ./config.yaml, then the XDG config dir)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l control-socket -d 'Control socket of the master (default: the config\'s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l legacy-agent -d 'Imitate agents that skip the handshake'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -l require-signed-upgrade -d 'Refuse (HTTP 403) data-channel upgrades that are not SigV4-signed with the simulator\'s credentials (the ones its environment lines print). Without it both forms are accepted (and counted in the stats)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -s q -l quiet -d 'Only errors on stderr'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -s h -l help -d 'Print help'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand sim" -s V -l version -d 'Print version'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand serve" -l listen -d 'SOCKS5 listen address or Unix socket path (repeatable; replaces the config\'s listeners)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand serve" -l default -d 'Default action: direct, reject or an upstream name' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand serve" -l profile -d 'AWS profile for every upstream' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand serve" -l region -d 'AWS region for every upstream' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand serve" -l state-dir -d 'Directory for known_hosts and logs (default: XDG state dir)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand serve" -l target -d 'Ad-hoc mode: bastion instance id or name (repeatable); builds a one-upstream config' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand serve" -l user -d 'Ad-hoc mode: SSH user on the bastion' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand serve" -s i -l identity -d 'Ad-hoc mode: SSH private key (repeatable)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand serve" -l port -d 'Ad-hoc mode: sshd port on the bastion' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand serve" -l pool-size -d 'Ad-hoc mode: SSH connections (SSM sessions) to keep open' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand serve" -l host-key-policy -d 'Ad-hoc mode: host key policy' -r -f -a "accept-new\t''
strict\t''
off\t''"
complete -c session-proxy -n "__fish_session_proxy_using_subcommand serve" -l ready-file -d 'Once ready, write the bound listener addresses here, one per line (for scripts and tests that listen on port 0)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand serve" -l drain-timeout -d 'Seconds `stop`/SIGTERM/SIGINT let streams in flight finish before closing them (config `drain_timeout_secs`, default 10); a second stop closes them at once' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand serve" -l config -d 'Configuration file (default: ./config.yaml, then the XDG config dir)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand serve" -l control-socket -d 'Control socket of the master (default: the config\'s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand serve" -l foreground -d 'Stay in the foreground (for systemd, launchd and tests)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand serve" -l allow-remote -d 'Allow listening on non-loopback addresses'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand serve" -l ssh-agent -d 'Ad-hoc mode: use ssh-agent ($SSH_AUTH_SOCK)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand serve" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand serve" -s q -l quiet -d 'Only errors on stderr'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand serve" -s h -l help -d 'Print help'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand serve" -s V -l version -d 'Print version'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand exec" -l document -d 'A separate-output session document (see --install-document); default: the config\'s exec.document, else AWS-StartNonInteractiveCommand (merged output, wrapped)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand exec" -l install-document -d 'Create the separate-output session document NAME [default: SessionProxy-Exec] in the account (ssm:CreateDocument), or confirm it is there, and say how to use it' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand exec" -l profile -d 'AWS profile (default: the alias\'s, else AWS_PROFILE or the default profile)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand exec" -l region -d 'AWS region (default: the alias\'s, else AWS_REGION or the profile\'s region)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand exec" -l config -d 'Configuration file (default: ./config.yaml, then the XDG config dir)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand exec" -l control-socket -d 'Control socket of the master (default: the config\'s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand exec" -l raw -d 'Send the command as is: no `sh -c`, no end marker (exit status unknown: exit 0)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand exec" -s t -l tty -d 'Run the command in a pty on the target (AWS-StartInteractiveCommand), stdin as typed'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand exec" -s i -l stdin -d 'Forward stdin to the command, with EOF (like `docker exec -i`; the command runs in a pty, stdout and stderr merged)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand exec" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand exec" -s q -l quiet -d 'Only errors on stderr'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand exec" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand exec" -s V -l version -d 'Print version'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand demo" -l listen -d 'SOCKS5 listen address (loopback). Default: 127.0.0.1:1080, or the next free port up to 1099' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand demo" -l state-dir -d 'Directory for the demo keys, known_hosts, env file and ssh_config (default: $XDG_STATE_HOME/session-proxy/demo)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand demo" -l config -d 'Configuration file (default: ./config.yaml, then the XDG config dir)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand demo" -l control-socket -d 'Control socket of the master (default: the config\'s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand demo" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand demo" -s q -l quiet -d 'Only errors on stderr'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand demo" -s h -l help -d 'Print help'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand demo" -s V -l version -d 'Print version'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand status" -l config -d 'Configuration file (default: ./config.yaml, then the XDG config dir)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand status" -l control-socket -d 'Control socket of the master (default: the config\'s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand status" -l json -d 'Print the report as JSON (errors in full; the table shortens LAST ERROR)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand status" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand status" -s q -l quiet -d 'Only errors on stderr'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand status" -s h -l help -d 'Print help'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand status" -s V -l version -d 'Print version'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand connect" -l config -d 'Configuration file (default: ./config.yaml, then the XDG config dir)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand connect" -l control-socket -d 'Control socket of the master (default: the config\'s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand connect" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand connect" -s q -l quiet -d 'Only errors on stderr'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand connect" -s h -l help -d 'Print help'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand connect" -s V -l version -d 'Print version'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand disconnect" -l config -d 'Configuration file (default: ./config.yaml, then the XDG config dir)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand disconnect" -l control-socket -d 'Control socket of the master (default: the config\'s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand disconnect" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand disconnect" -s q -l quiet -d 'Only errors on stderr'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand disconnect" -s h -l help -d 'Print help'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand disconnect" -s V -l version -d 'Print version'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand reload" -l config -d 'Configuration file (default: ./config.yaml, then the XDG config dir)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand reload" -l control-socket -d 'Control socket of the master (default: the config\'s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand reload" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand reload" -s q -l quiet -d 'Only errors on stderr'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand reload" -s h -l help -d 'Print help'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand reload" -s V -l version -d 'Print version'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand stop" -l config -d 'Configuration file (default: ./config.yaml, then the XDG config dir)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand stop" -l control-socket -d 'Control socket of the master (default: the config\'s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand stop" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand stop" -s q -l quiet -d 'Only errors on stderr'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand stop" -s h -l help -d 'Print help'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand stop" -s V -l version -d 'Print version'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand route" -l config -d 'Configuration file (default: ./config.yaml, then the XDG config dir)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand route" -l control-socket -d 'Control socket of the master (default: the config\'s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand route" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand route" -s q -l quiet -d 'Only errors on stderr'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand route" -s h -l help -d 'Print help'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand route" -s V -l version -d 'Print version'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand ssh-config" -l profile -d 'AWS profile for the ProxyCommand (default: each alias\'s, else AWS_PROFILE or the default profile)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand ssh-config" -l region -d 'AWS region for the ProxyCommand (default: each alias\'s, else AWS_REGION or the profile\'s)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand ssh-config" -l write -d 'Write the snippet to this file (atomically, mode 0644), e.g. ~/.ssh/config.d/session-proxy, and print the `Include` line ~/.ssh/config needs. The user\'s own ~/.ssh/config is never changed' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand ssh-config" -l config -d 'Configuration file (default: ./config.yaml, then the XDG config dir)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand ssh-config" -l control-socket -d 'Control socket of the master (default: the config\'s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand ssh-config" -l send-key -d 'Make the ProxyCommand push your public key with EC2 Instance Connect before each login (`stdio --send-key --os-user %r`), for instances that have no key of yours'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand ssh-config" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand ssh-config" -s q -l quiet -d 'Only errors on stderr'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand ssh-config" -s h -l help -d 'Print help'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand ssh-config" -s V -l version -d 'Print version'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand instances" -l filter -d 'A DescribeInstanceInformation filter KEY=VALUE[,VALUE...], e.g. `tag:Env=prod`, `tag-key=Team`, `PlatformTypes=Linux` (repeatable: all must match, values are OR-ed)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand instances" -l profile -d 'AWS profile (default: the config\'s `aws.profile`, else AWS_PROFILE or the default)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand instances" -l region -d 'AWS region (default: the config\'s `aws.region`, else AWS_REGION or the profile\'s)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand instances" -l config -d 'Configuration file (default: ./config.yaml, then the XDG config dir)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand instances" -l control-socket -d 'Control socket of the master (default: the config\'s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand instances" -l online -d 'Only instances whose agent is connected (PingStatus Online)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand instances" -l json -d 'Print one JSON array (fields: id, name, ping_status, platform, agent_version, ip_address, computer_name, last_ping, aliases, upstreams) instead of the table'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand instances" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand instances" -s q -l quiet -d 'Only errors on stderr'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand instances" -s h -l help -d 'Print help'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand instances" -s V -l version -d 'Print version'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand doctor" -l profile -d 'AWS profile (default: the alias\'s, the config\'s `aws.profile`, else AWS_PROFILE or the default)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand doctor" -l region -d 'AWS region (default: the alias\'s, the config\'s `aws.region`, else AWS_REGION or the profile\'s)' -r
complete -c session-proxy -n "__fish_session_proxy_using_subcommand doctor" -l config -d 'Configuration file (default: ./config.yaml, then the XDG config dir)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand doctor" -l control-socket -d 'Control socket of the master (default: the config\'s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand doctor" -l json -d 'Print one JSON object {"ok": bool, "checks": [{name, status, detail, fix}]} instead of the text'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand doctor" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand doctor" -s q -l quiet -d 'Only errors on stderr'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand generate" -l completions -d 'Directory for completions (bash, zsh, fish, elvish, powershell)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand generate" -l man -d 'Directory for man pages' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand generate" -l config -d 'Configuration file (default: ./config.yaml, then the XDG config dir)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand generate" -l control-socket -d 'Control socket of the master (default: the config\'s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand generate" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand generate" -s q -l quiet -d 'Only errors on stderr'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand generate" -s h -l help -d 'Print help'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand generate" -s V -l version -d 'Print version'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand completions" -l config -d 'Configuration file (default: ./config.yaml, then the XDG config dir)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand completions" -l control-socket -d 'Control socket of the master (default: the config\'s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)' -r -F
complete -c session-proxy -n "__fish_session_proxy_using_subcommand completions" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand completions" -s q -l quiet -d 'Only errors on stderr'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand completions" -s h -l help -d 'Print help'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand completions" -s V -l version -d 'Print version'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand help; and not __fish_seen_subcommand_from stdio shell forward sim serve exec demo status connect disconnect reload stop route ssh-config instances doctor generate completions help" -f -a "stdio" -d 'Bridge stdin/stdout to a port on an instance (use as OpenSSH ProxyCommand)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand help; and not __fish_seen_subcommand_from stdio shell forward sim serve exec demo status connect disconnect reload stop route ssh-config instances doctor generate completions help" -f -a "shell" -d 'Open an interactive shell on an instance (like `aws ssm start-session`)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand help; and not __fish_seen_subcommand_from stdio shell forward sim serve exec demo status connect disconnect reload stop route ssh-config instances doctor generate completions help" -f -a "forward" -d 'Forward local ports to hosts the instance reaches (`ssh -L` over SSM port sessions)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand help; and not __fish_seen_subcommand_from stdio shell forward sim serve exec demo status connect disconnect reload stop route ssh-config instances doctor generate completions help" -f -a "sim" -d 'Run a local simulator of the AWS side of Session Manager (no AWS account needed)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand help; and not __fish_seen_subcommand_from stdio shell forward sim serve exec demo status connect disconnect reload stop route ssh-config instances doctor generate completions help" -f -a "serve" -d 'SOCKS5 (and HTTP CONNECT) proxy routing destinations to SSH-over-SSM bastion pools, direct, or reject'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand help; and not __fish_seen_subcommand_from stdio shell forward sim serve exec demo status connect disconnect reload stop route ssh-config instances doctor generate completions help" -f -a "exec" -d 'Run a command on an instance: its output on stdout, its exit status as ours'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand help; and not __fish_seen_subcommand_from stdio shell forward sim serve exec demo status connect disconnect reload stop route ssh-config instances doctor generate completions help" -f -a "demo" -d 'Try it without AWS: simulator + demo instance + SOCKS5 proxy in one process'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand help; and not __fish_seen_subcommand_from stdio shell forward sim serve exec demo status connect disconnect reload stop route ssh-config instances doctor generate completions help" -f -a "status" -d 'Show the running master\'s upstreams, forwards, connections and traffic (exits 68 while an upstream is down)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand help; and not __fish_seen_subcommand_from stdio shell forward sim serve exec demo status connect disconnect reload stop route ssh-config instances doctor generate completions help" -f -a "connect" -d 'Bring an upstream of the running master up and wait for a ready connection, or start a forward again'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand help; and not __fish_seen_subcommand_from stdio shell forward sim serve exec demo status connect disconnect reload stop route ssh-config instances doctor generate completions help" -f -a "disconnect" -d 'Close an upstream\'s SSM sessions (its destinations get "host unreachable"), or stop a forward (its listener and sessions)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand help; and not __fish_seen_subcommand_from stdio shell forward sim serve exec demo status connect disconnect reload stop route ssh-config instances doctor generate completions help" -f -a "reload" -d 'Make the running master re-read its config and apply what changed'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand help; and not __fish_seen_subcommand_from stdio shell forward sim serve exec demo status connect disconnect reload stop route ssh-config instances doctor generate completions help" -f -a "stop" -d 'Stop the running master (drain, terminate every SSM session)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand help; and not __fish_seen_subcommand_from stdio shell forward sim serve exec demo status connect disconnect reload stop route ssh-config instances doctor generate completions help" -f -a "route" -d 'Show which route, upstream or default a destination takes (asks the running master)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand help; and not __fish_seen_subcommand_from stdio shell forward sim serve exec demo status connect disconnect reload stop route ssh-config instances doctor generate completions help" -f -a "ssh-config" -d 'Print an ssh_config snippet (or write it with --write) so `ssh i-…` and `ssh <alias>` go through Session Manager'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand help; and not __fish_seen_subcommand_from stdio shell forward sim serve exec demo status connect disconnect reload stop route ssh-config instances doctor generate completions help" -f -a "instances" -d 'List the managed instances Session Manager reaches, with the config aliases and upstreams that point at each'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand help; and not __fish_seen_subcommand_from stdio shell forward sim serve exec demo status connect disconnect reload stop route ssh-config instances doctor generate completions help" -f -a "doctor" -d 'Check config, credentials, region, endpoint, permissions, a target, the master and ssh, naming the fix for each failure'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand help; and not __fish_seen_subcommand_from stdio shell forward sim serve exec demo status connect disconnect reload stop route ssh-config instances doctor generate completions help" -f -a "generate" -d 'Write shell completions and man pages'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand help; and not __fish_seen_subcommand_from stdio shell forward sim serve exec demo status connect disconnect reload stop route ssh-config instances doctor generate completions help" -f -a "completions" -d 'Print the completion script for a shell (`source <(session-proxy completions bash)`)'
complete -c session-proxy -n "__fish_session_proxy_using_subcommand help; and not __fish_seen_subcommand_from stdio shell forward sim serve exec demo status connect disconnect reload stop route ssh-config instances doctor generate completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
